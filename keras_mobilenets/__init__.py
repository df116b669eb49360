"""keras_mobilenets: the whole MobileNet family (V1 to V4) as Keras 3 models.

    import keras_mobilenets as kmn
    model = kmn.V3Small(classes=5)
    kmn.profile(model).total_macs

`VARIANTS` names the variants `kmn.build(name, ...)` builds; `BUILDERS` maps
each name to its builder (`kmn.V1` ... `kmn.V4HybridLarge`).

The training and TFLite stages are `kmn.training` (fit, quantization_aware,
...) and `kmn.tflite` (convert, evaluate, benchmark, ...).

Names are imported on first use (PEP 562), so that importing the package, or
running `keras-mobilenets --help`, does not start TensorFlow.
"""
from keras_mobilenets.lazy import exports

__version__ = "0.1.0"

# public name -> the module that defines it (None: a submodule)
__all__, __getattr__, __dir__ = exports(__name__, {
    "BUILDERS": "keras_mobilenets.models",
    "V1": "keras_mobilenets.models",
    "V2": "keras_mobilenets.models",
    "V3Large": "keras_mobilenets.models",
    "V3Small": "keras_mobilenets.models",
    "V4ConvLarge": "keras_mobilenets.models",
    "V4ConvMedium": "keras_mobilenets.models",
    "V4ConvSmall": "keras_mobilenets.models",
    "V4HybridLarge": "keras_mobilenets.models",
    "V4HybridMedium": "keras_mobilenets.models",
    "VARIANTS": "keras_mobilenets.models",
    "build": "keras_mobilenets.models",
    "architecture_of": "keras_mobilenets.models",
    "MobileNet": "keras_mobilenets.layers",
    "LayerScale": "keras_mobilenets.layers",
    "decode_predictions": "keras_mobilenets.imagenet",
    "profile": "keras_mobilenets.profiling",
    "blocks": None,
    "training": None,
    "tflite": None,
})
