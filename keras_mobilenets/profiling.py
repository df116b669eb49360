"""Parameters and multiply-adds per layer, the figures the papers report.

MACs count multiply-accumulates of convolutions, dense layers and attention
matmuls (not elementwise ops), as the papers and timm's reference figures do.
keras.Model.summary gives parameters but no MACs, hence this small counter.
"""
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class Profile:
    layers: tuple
    total_params: int
    trainable_params: int
    total_macs: int

    def table(self):
        """The per-layer figures as aligned text, layers without parameters or MACs left out."""
        lines = [f"{'layer':40} {'kind':22} {'output':>18} {'params':>10} {'MACs':>14}"]
        for layer in self.layers:
            if layer.params or layer.macs:
                shape = "x".join(str(d) for d in layer.output_shape)
                lines.append(
                    f"{layer.name:40} {layer.kind:22} {shape:>18} {layer.params:>10,} {layer.macs:>14,}"
                )
        lines.append(f"{'total':40} {'':22} {'':>18} {self.total_params:>10,} {self.total_macs:>14,}")
        return "\n".join(lines)


def _shape(tensor):
    return tuple(tensor.shape[1:])


def _macs(layer):
    kind = type(layer).__name__
    if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
        kernel = layer.weights[0]
        outputs = math.prod(_shape(layer.output)[:-1])
        per_output = math.prod(kernel.shape[:-1]) if kind != "DepthwiseConv2D" else math.prod(kernel.shape[:2])
        channels = layer.output.shape[-1]
        return outputs * per_output * channels
    if kind == "Dot":
        first = layer.input[0].shape
        contracted = first[layer.axes[0]] if isinstance(layer.axes, (list, tuple)) else first[layer.axes]
        return math.prod(_shape(layer.output)) * contracted
    return 0


def profile(model):
    """Profile a built model; it needs a fixed input size (e.g. input_shape=(224, 224, 3))."""
    if any(d is None for d in model.inputs[0].shape[1:]):
        raise ValueError(
            f"model: {model.name} has a variable input size {tuple(model.inputs[0].shape[1:])}; "
            "build it with a fixed input_shape to count MACs"
        )
    rows = tuple(
        LayerProfile(
            name=layer.name,
            kind=type(layer).__name__,
            output_shape=_shape(layer.output),
            params=sum(math.prod(w.shape) for w in layer.weights),
            macs=_macs(layer),
        )
        for layer in model.layers
    )
    return Profile(
        layers=rows,
        total_params=sum(r.params for r in rows),
        trainable_params=sum(math.prod(w.shape) for w in model.trainable_weights),
        total_macs=sum(r.macs for r in rows),
    )
