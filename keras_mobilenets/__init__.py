"""keras_mobilenets: the whole MobileNet family (V1 to V4) as Keras 3 models.

    import keras_mobilenets as kmn
    model = kmn.V3Small(classes=5)
    kmn.profile(model).total_macs

The training and TFLite stages live in `keras_mobilenets.training` and
`keras_mobilenets.tflite`.
"""
from keras_mobilenets import blocks
from keras_mobilenets.layers import LayerScale
from keras_mobilenets.models import (
    BUILDERS,
    V1,
    V2,
    V3Large,
    V3Small,
    V4ConvLarge,
    V4ConvMedium,
    V4ConvSmall,
    V4HybridLarge,
    V4HybridMedium,
    VARIANTS,
    build,
)
from keras_mobilenets.profile import profile

__version__ = "0.1.0"
__all__ = [
    "BUILDERS", "LayerScale", "V1", "V2", "V3Large", "V3Small", "V4ConvLarge", "V4ConvMedium",
    "V4ConvSmall", "V4HybridLarge", "V4HybridMedium", "VARIANTS", "blocks", "build", "profile",
]
