"""The one custom layer the MobileNets need; everything else is a stock Keras layer."""
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
