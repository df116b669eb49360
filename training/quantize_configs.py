"""QuantizeConfigs for the layers that tfmot's default 8-bit registry does not know.

tfmot quantizes Conv2D, DepthwiseConv2D, Dense, BatchNormalization (folded with
the conv and a following ReLU), ReLU, Add, GlobalAveragePooling2D and Reshape.
Our graphs add: Multiply (squeeze-excite), Rescaling (the preprocessing,
hard-sigmoid's / 6, the attention's query scale), ShiftedReLU6 (relu6(x + 3)),
HardSwish, StaticReshape, and for the V4 hybrids Dot and Softmax (attention),
and Gelu. Each compute layer gets
a quantized output, so that every op of the converted graph has int8 scales.
HardSwish, Softmax and Gelu are fake-quantized at their input and output too;
the TFLite stage runs those three ops in float between a DEQUANTIZE and a
QUANTIZE (tflite/xnnpack.py), as post-training int8 does, since XNNPACK has
int8 kernels for none of them. The classifier's softmax (Activation) keeps
tfmot's config: no quantizer, so the file's output is float probabilities.
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

    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry)

    class SymmetricConvQuantizeConfig(registry.Default8BitConvQuantizeConfig):
        """tfmot's Conv2D config, its output quantized symmetrically (zero point 0).

        For attention's keys and values: XNNPACK runs an int8 BATCH_MATMUL only
        when its second operand's zero point is 0 (measured: with -1, the op
        falls outside the delegate and cuts the graph).
        """

        def __init__(self):
            super().__init__(["kernel"], ["activation"], False)
            self.activation_quantizer = quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

        def get_config(self):
            return {}

    classes = (OutputQuantizeConfig, PassThroughQuantizeConfig, SymmetricConvQuantizeConfig)
    return {cls.__name__: cls for cls in classes}


def quantize_config_for(layer):
    """Our QuantizeConfig for `layer`, or None where tfmot's default registry decides."""
    classes = config_classes()
    kind = type(layer).__name__
    if kind == "ShiftedReLU6":
        return classes["OutputQuantizeConfig"](fixed_range=(0.0, 6.0))
    if kind == "Softmax":  # attention weights: always in [0, 1]
        return classes["OutputQuantizeConfig"](fixed_range=(0.0, 1.0))
    if kind in ("Multiply", "Rescaling", "HardSwish", "Gelu", "Dot"):
        return classes["OutputQuantizeConfig"]()
    if kind == "Conv2D" and _feeds_dot(layer):  # keys, values: see SymmetricConvQuantizeConfig
        return classes["SymmetricConvQuantizeConfig"]()
    if kind == "StaticReshape":
        return classes["PassThroughQuantizeConfig"]()
    return None


def _feeds_dot(layer):
    """Whether `layer`'s output, through reshapes, is the second operand (keys, values) of a Dot."""
    for node in layer.outbound_nodes:
        consumer = node.outbound_layer
        inbound = node.inbound_layers if isinstance(node.inbound_layers, list) else [node.inbound_layers]
        if type(consumer).__name__ == "Dot" and len(inbound) == 2 and inbound[1] is layer:
            return True
        if type(consumer).__name__ == "StaticReshape" and _feeds_dot(consumer):
            return True
    return False
