"""The tf_keras kit: builds our architectures in tf_keras (Keras 2) for tfmot.

tensorflow-model-optimization only quantizes tf_keras models, so the QAT stage
builds the same tables with the same builder code inside `use_kit(tf_keras_kit())`.
Two forms differ from the Keras 3 models, both so that the int8 TFLite graph
stays whole in one XNNPACK partition (LiteRT 2.3's XNNPACK has no int8
HARD_SWISH, and a batch size read at run time leaves SHAPE/PACK ops outside it):

- hard-sigmoid and hard-swish are written as ADD+RELU6, MUL and MUL, each with
  its own quantized output, instead of one HARD_SWISH op;
- Reshape reshapes to a constant (-1, ...) shape;
- the preprocessing Rescaling (scale and offset) is a frozen 1x1 depthwise conv
  (once tfmot wraps it, QuantizeWrapperV2 lists its quantized kernel as
  trainable again, so QAT may adjust those three scales; the int8 file uses
  whatever values they end with).

The functions are the same; layer names and weights are too, so weights copy
over by layer name.
"""
import functools
import types


@functools.lru_cache(maxsize=None)
def custom_layers():
    """Our tf_keras layer classes, by name (also the custom objects to load a saved model)."""
    import tensorflow as tf
    import tf_keras

    class ShiftedReLU6(tf_keras.layers.Layer):
        """relu6(x + 3): the shared first step of hard-sigmoid and hard-swish (one ADD+RELU6)."""

        def call(self, inputs):
            return tf.nn.relu6(inputs + 3.0)

    class StaticReshape(tf_keras.layers.Reshape):
        """Reshape to a constant shape, so TFLite needs no SHAPE/STRIDED_SLICE/PACK ops."""

        def call(self, inputs):
            return tf.reshape(inputs, (-1,) + tuple(self.target_shape))

    class Gelu(tf_keras.layers.Layer):
        """Exact (erf) GELU, as Keras 3 and timm compute it."""

        def call(self, inputs):
            return tf.nn.gelu(inputs, approximate=False)

    class LayerScale(tf_keras.layers.Layer):
        """Per-channel learned scale; the same weight (`gamma`, shape (C,)) as the Keras 3 layer."""

        def __init__(self, init_value=1e-5, **kwargs):
            super().__init__(**kwargs)
            self.init_value = init_value

        def build(self, input_shape):
            self.gamma = self.add_weight(
                name="gamma",
                shape=(input_shape[-1],),
                initializer=tf_keras.initializers.Constant(self.init_value),
            )

        def call(self, inputs):
            return inputs * tf.cast(self.gamma, inputs.dtype)

        def get_config(self):
            return {**super().get_config(), "init_value": self.init_value}

    classes = (ShiftedReLU6, StaticReshape, Gelu, LayerScale)
    return {cls.__name__: cls for cls in classes}


def _hard_sigmoid(x, name):
    import tf_keras

    gate = custom_layers()["ShiftedReLU6"](name=f"{name}_relu6")(x)
    return tf_keras.layers.Rescaling(1 / 6, name=name)(gate)


def _hard_swish(x, name):
    import tf_keras

    gate = custom_layers()["ShiftedReLU6"](name=f"{name}_relu6")(x)
    sixth = tf_keras.layers.Rescaling(1 / 6, name=f"{name}_sixth")(x)
    return tf_keras.layers.Multiply(name=name)([sixth, gate])


def _activation(activation, name):
    """(activation name, layer name) -> a callable that adds the activation's layers."""
    import tf_keras

    if activation == "relu":
        return tf_keras.layers.ReLU(name=name)
    if activation == "relu6":
        return tf_keras.layers.ReLU(6.0, name=name)
    if activation == "hard_sigmoid":
        return functools.partial(_hard_sigmoid, name=name)
    if activation == "hard_swish":
        return functools.partial(_hard_swish, name=name)
    if activation == "gelu":
        return custom_layers()["Gelu"](name=name)
    raise ValueError(
        f"activation={activation!r}: the tf_keras kit knows relu, relu6, hard_sigmoid, "
        "hard_swish and gelu"
    )


def _rescaling(scale, offset=0.0, name=None):
    """Rescaling; with an offset, as a frozen 1x1 depthwise conv.

    x * scale + offset is two TFLite ops (MUL, ADD) whose middle tensor would
    have no int8 scale; a 1x1 depthwise conv with the scale as kernel and the
    offset as bias is one int8 op that tfmot already knows how to quantize.
    """
    import tf_keras

    if not offset:
        return tf_keras.layers.Rescaling(scale, name=name)
    return tf_keras.layers.DepthwiseConv2D(
        1,
        depthwise_initializer=tf_keras.initializers.Constant(scale),
        bias_initializer=tf_keras.initializers.Constant(offset),
        trainable=False,
        name=name,
    )


class _Layers:
    """tf_keras.layers, with Reshape and Rescaling replaced by forms that quantize whole."""

    def __getattr__(self, name):
        import tf_keras

        if name == "Reshape":
            return custom_layers()["StaticReshape"]
        if name == "Rescaling":
            return _rescaling
        return getattr(tf_keras.layers, name)


def tf_keras_kit():
    """A KerasKit for `keras_mobilenets.kit.use_kit` that builds tf_keras models."""
    import tf_keras

    from keras_mobilenets.kit import KerasKit

    keras = types.SimpleNamespace(layers=_Layers(), Model=tf_keras.Model, utils=tf_keras.utils)
    return KerasKit(keras=keras, activation=_activation, layer_scale=custom_layers()["LayerScale"])
