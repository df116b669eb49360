"""Our two Keras 3 classes: the LayerScale layer, and MobileNet, the model class that records
how it was built. Everything else is a stock Keras layer.

Both are registered Keras serializables: loading a `.keras` file that holds
them needs this module imported (any keras_mobilenets builder, `Run` or
`keras_mobilenets.training` function does that).
"""
import keras


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class LayerScale(keras.layers.Layer):
    """Multiplies each channel by a learned scale (MobileNetV4 hybrid blocks, as in CaiT).

    Starts small (1e-5) so that a new residual block begins close to identity.
    """

    def __init__(self, init_value=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
        )

    def call(self, inputs):
        return inputs * keras.ops.cast(self.gamma, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class MobileNet(keras.Model):
    """A functional Keras model that knows which variant and builder arguments made it.

    The QAT stage rebuilds the same network in tf_keras (tfmot quantizes only
    Keras 2 models), and a graph alone does not say its width multiplier. So
    every builder records `variant` (e.g. "v3_small") and `build_arguments`
    (the builder's arguments that decide the layers, with `input_shape`
    resolved), and `kmn.build(model.variant, **model.build_arguments)` builds
    the same architecture again. The record is part of the model's config: it
    survives `.keras` save and load; layers, their names and the order of the
    weights are those of a plain functional model.

    `keras.models.clone_model` builds a new model through the constructor
    and drops the record; `MobileNet.from_config(model.get_config())` keeps it.
    """

    def __init__(self, inputs, outputs, name=None, *, variant=None, build_arguments=None, **kwargs):
        super().__init__(inputs, outputs, name=name, **kwargs)
        self.variant = variant
        self.build_arguments = dict(build_arguments or {})

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "build_arguments": self.build_arguments}
