"""QuantizeConfigs for the layers that tfmot's default 8-bit registry does not know.

tfmot quantizes Conv2D, DepthwiseConv2D, Dense, BatchNormalization (folded with
the conv and a following ReLU), ReLU, Add, GlobalAveragePooling2D and Reshape.
Our graphs add: Multiply (squeeze-excite, hard-swish), Rescaling (the
preprocessing and hard-sigmoid's / 6), ShiftedReLU6 (relu6(x + 3)) and
StaticReshape. Each compute layer gets a quantized output, so that every op of
the converted graph has int8 scales and no float op is left between them.
"""
import functools


@functools.lru_cache(maxsize=None)
def config_classes():
    """Our QuantizeConfig classes, by name (tfmot is imported here, not at module import)."""
    import tensorflow_model_optimization as tfmot

    quantizers = tfmot.quantization.keras.quantizers

    class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        """Quantize only the output: range learned by moving average, or fixed when known."""

        def __init__(self, fixed_range=None):
            self.fixed_range = None if fixed_range is None else tuple(fixed_range)

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            if self.fixed_range is not None:
                low, high = self.fixed_range
                return [quantizers.FixedQuantizer(
                    num_bits=8, init_min=low, init_max=high, narrow_range=False)]
            return [quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {"fixed_range": self.fixed_range}

    class PassThroughQuantizeConfig(OutputQuantizeConfig):
        """No quantizer: the layer moves int8 values, keeping its input's scale (reshapes)."""

        def get_output_quantizers(self, layer):
            return []

    return {cls.__name__: cls for cls in (OutputQuantizeConfig, PassThroughQuantizeConfig)}


def quantize_config_for(layer):
    """Our QuantizeConfig for `layer`, or None where tfmot's default registry decides."""
    classes = config_classes()
    kind = type(layer).__name__
    if kind == "ShiftedReLU6":
        return classes["OutputQuantizeConfig"](fixed_range=(0.0, 6.0))
    if kind in ("Multiply", "Rescaling"):
        return classes["OutputQuantizeConfig"]()
    if kind == "StaticReshape":
        return classes["PassThroughQuantizeConfig"]()
    return None
