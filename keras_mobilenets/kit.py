"""Which Keras the blocks build with.

The builders normally build Keras 3 models. Quantization-aware training needs
the same architecture in tf_keras (Keras 2), because tensorflow-model-optimization
only quantizes tf_keras models. So the blocks never import a Keras of their own:
they ask `active_kit()` for the layers module, the activation layers and our one
custom layer, and the QAT stage swaps in a tf_keras kit with `use_kit(...)`.
"""
import contextlib
import contextvars
import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class KerasKit:
    """The parts of one Keras implementation that the blocks use."""

    keras: Any  # the keras or the tf_keras module
    activation: Callable[[str, str], Any]  # (activation name, layer name) -> layer
    layer_scale: Callable[..., Any]  # (init value, name=) -> a callable that applies layer scale
    # (inputs, outputs, name=, variant=, build_arguments=) -> the model; Keras 3 keeps the record
    model: Callable[..., Any]


ACTIVATIONS = ("relu", "relu6", "hard_swish", "hard_sigmoid", "gelu")


def _keras3_activation(activation, name):
    import keras

    if activation == "relu":
        return keras.layers.ReLU(name=name)
    if activation == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    if activation in ("hard_swish", "hard_sigmoid", "gelu"):
        # Keras 3 defines hard_sigmoid as relu6(x + 3) / 6, as the MobileNetV3
        # paper does, and gelu exactly (erf), as timm does.
        return keras.layers.Activation(activation, name=name)
    raise ValueError(f"activation={activation!r} is not one of {ACTIVATIONS}")


def keras3_kit():
    import keras

    from keras_mobilenets.layers import LayerScale, MobileNet

    return KerasKit(keras=keras, activation=_keras3_activation, layer_scale=LayerScale, model=MobileNet)


_active_kit = contextvars.ContextVar("keras_mobilenets_kit", default=None)


def active_kit():
    return _active_kit.get() or keras3_kit()


@contextlib.contextmanager
def use_kit(kit):
    """Build with another Keras inside this block (the QAT stage uses tf_keras)."""
    token = _active_kit.set(kit)
    try:
        yield kit
    finally:
        _active_kit.reset(token)
