"""The tf_keras kit: builds our architectures in tf_keras (Keras 2) for tfmot.

tensorflow-model-optimization only quantizes tf_keras models, so the QAT stage
builds the same tables with the same builder code inside `use_kit(tf_keras_kit())`.
A few forms differ from the Keras 3 models, so that the QAT int8 TFLite graph is
the same fast graph as post-training int8, whole in one XNNPACK partition:

- hard-swish is one layer (HardSwish) that the converter fuses into one
  HARD_SWISH op, fake-quantized at its input and output only; the TFLite stage
  then runs it in float between a DEQUANTIZE and a QUANTIZE, as post-training
  int8 does (LiteRT 2.3's XNNPACK has no int8 HARD_SWISH). Measured at 224 px,
  1 thread: v3_small QAT 1.69 ms with hard-swish spelled as int8 ADD+RELU6, MUL,
  MUL (a requantization at each step) against 1.11 ms for post-training int8;
- hard-sigmoid (squeeze-excite's gate, on a 1x1 tensor) stays ADD+RELU6 and MUL
  in int8, the same ops post-training int8 gives it;
- the V4 hybrids' layer scale is no layer: qat_model.copy_weights folds it into
  the conv or BatchNorm before it (exact). As a layer it is an int8 MUL by a
  per-channel constant after a fake-quantized output, which the converter
  cannot fold and XNNPACK rejects (30 ops outside the delegate on
  v4_hybrid_medium); post-training int8 folds it into the conv the same way;
- a BatchNormalization that follows no conv (Mobile MQA's norm) is a frozen 1x1
  depthwise conv with the BN's scale and shift (copy_weights computes them):
  tfmot folds a BN into the conv before it, but a lone one converts to a MUL
  and an ADD whose middle tensor has no int8 scale, so both ran in float;
- Reshape reshapes to a constant (-1, ...) shape (a batch size read at run
  time leaves SHAPE/PACK ops outside XNNPACK);
- the preprocessing Rescaling (scale and offset) is two layers, a MUL and an
  ADD, each with its own quantized output (see _rescaling).

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

    class HardSwish(tf_keras.layers.Layer):
        """x * relu6(x + 3) / 6 in one layer: the converter fuses it into one HARD_SWISH op."""

        def call(self, inputs):
            return inputs * tf.nn.relu6(inputs + 3.0) * (1.0 / 6.0)

    class StaticReshape(tf_keras.layers.Reshape):
        """Reshape to a constant shape, so TFLite needs no SHAPE/STRIDED_SLICE/PACK ops."""

        def call(self, inputs):
            return tf.reshape(inputs, (-1,) + tuple(self.target_shape))

    class Gelu(tf_keras.layers.Layer):
        """Exact (erf) GELU, as Keras 3 and timm compute it."""

        def call(self, inputs):
            return tf.nn.gelu(inputs, approximate=False)

    classes = (ShiftedReLU6, HardSwish, StaticReshape, Gelu)
    return {cls.__name__: cls for cls in classes}


def _hard_sigmoid(x, name):
    import tf_keras

    gate = custom_layers()["ShiftedReLU6"](name=f"{name}_relu6")(x)
    return tf_keras.layers.Rescaling(1 / 6, name=name)(gate)


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
        return custom_layers()["HardSwish"](name=name)
    if activation == "gelu":
        return custom_layers()["Gelu"](name=name)
    raise ValueError(
        f"activation={activation!r}: the tf_keras kit knows relu, relu6, hard_sigmoid, "
        "hard_swish and gelu"
    )


def _rescaling(scale, offset=0.0, name=None):
    """Rescaling; with an offset, as two layers (x * scale, then + offset), each quantized.

    x * scale + offset is two TFLite ops (MUL, ADD); as one layer their middle
    tensor would have no int8 scale. Two layers give the same MUL and ADD that
    post-training int8 has. Per-channel constants (V4's mean/std) are tiled to
    (W, C), as tflite/converter.py does for the float models: broadcast over C = 3
    alone, XNNPACK's int8 MUL/ADD cost 1.4 ms at 224 px, tiled about 0.05 ms.
    (A 1x1 depthwise conv, the earlier form, ran 0.2 ms slower than PTQ's MUL+ADD
    on v3_small at 224 px.)
    """
    import numpy as np
    import tf_keras

    if np.ndim(offset) == 0 and not offset:
        return tf_keras.layers.Rescaling(scale, name=name)

    def apply(x):
        tiled = (lambda value: value) if np.ndim(scale) == 0 else (
            lambda value: np.broadcast_to(np.asarray(value, np.float32), x.shape[2:]).tolist())
        x = tf_keras.layers.Rescaling(tiled(scale), name=f"{name}_scale")(x)
        return tf_keras.layers.Rescaling(1.0, offset=tiled(offset), name=name)(x)

    return apply


def _batch_normalization(epsilon, momentum, name):
    """BatchNormalization after a conv; after anything else, a frozen 1x1 depthwise conv (see above)."""
    import tf_keras

    def apply(x):
        producer = type(x._keras_history.layer).__name__
        if producer in ("Conv2D", "DepthwiseConv2D"):
            return tf_keras.layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)
        return tf_keras.layers.DepthwiseConv2D(1, trainable=False, name=name)(x)

    return apply


class _Layers:
    """tf_keras.layers, with Reshape, Rescaling and a lone BatchNormalization in forms that quantize whole."""

    def __getattr__(self, name):
        import tf_keras

        if name == "Reshape":
            return custom_layers()["StaticReshape"]
        if name == "Rescaling":
            return _rescaling
        if name == "BatchNormalization":
            return _batch_normalization
        return getattr(tf_keras.layers, name)


def tf_keras_kit():
    """A KerasKit for `keras_mobilenets.kit.use_kit` that builds tf_keras models."""
    import tf_keras

    from keras_mobilenets.kit import KerasKit

    keras = types.SimpleNamespace(layers=_Layers(), Model=tf_keras.Model, utils=tf_keras.utils)
    return KerasKit(keras=keras, activation=_activation, layer_scale=_folded_layer_scale, model=_plain_model)


def _plain_model(inputs, outputs, name, variant, build_arguments):
    """A tf_keras functional model: the QAT model needs no record of how it was built."""
    import tf_keras

    return tf_keras.Model(inputs, outputs, name=name)


def _folded_layer_scale(init_value, name):
    """Layer scale as no layer: copy_weights folds it into the layer before it (see the module doc)."""
    return lambda x: x
