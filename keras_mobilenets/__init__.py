"""keras_mobilenets: the whole MobileNet family (V1 to V4) as Keras 3 models.

    import keras_mobilenets as kmn
    model = kmn.V3Small(classes=5)
    kmn.profile(model).total_macs

The training and TFLite stages live in `keras_mobilenets.training` and
`keras_mobilenets.tflite`.

Names are imported on first use (PEP 562), so that importing the package, or
running `keras-mobilenets --help`, does not start TensorFlow.
"""
import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
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
    "LayerScale": "keras_mobilenets.layers",
    "profile": "keras_mobilenets.profiling",
    "blocks": None,  # a module of its own
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_mobilenets' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = importlib.import_module(f"keras_mobilenets.{name}") if module is None else getattr(
        importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
