"""Typed rows for the architecture tables, and the conventions each reference uses.

A row says what one block is, in the words of the papers' tables: kernel,
expansion, output channels, stride, squeeze-excite, activation. `repeats`
stacks the same block; as in the papers, only the first repeat strides.
Channels are the paper's (width multiplier 1.0); the builder scales them.
"""
import dataclasses
from typing import Literal, Optional, Union

RE, R6, HS, GELU = "relu", "relu6", "hard_swish", "gelu"


@dataclasses.dataclass(frozen=True)
class ConvBnAct:
    """A full convolution + batch norm + activation (stems, last 1x1 convs).

    width: how the width multiplier applies: "scaled" (default), "fixed" (never:
    MobileNetV3's stem), "grow_only" (only when alpha > 1: the last conv of V2),
    or "six_times_input" (the last conv of V3: 6x its input channels, as
    keras.applications computes it).
    """

    filters: int
    kernel: int
    stride: int
    activation: str
    width: Literal["scaled", "fixed", "grow_only", "six_times_input"] = "scaled"
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class DepthwiseSeparable:
    """MobileNetV1: 3x3 depthwise + BN + ReLU6, then 1x1 pointwise + BN + ReLU6."""

    filters: int
    stride: int
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class InvertedResidual:
    """MobileNetV2/V3 "bneck": 1x1 expand, kxk depthwise, optional SE, 1x1 linear project.

    expansion is a ratio of the input channels (the V3 paper gives "exp size";
    the tables write it as exp size / input channels).
    """

    expansion: float
    filters: int
    kernel: int
    stride: int
    se: bool = False
    activation: str = R6
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class FusedInvertedResidual:
    """MobileNetV4 FusedIB: a full kxk expansion conv, then a 1x1 linear projection."""

    expansion: float
    filters: int
    kernel: int
    stride: int
    activation: str = RE
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class UniversalInvertedBottleneck:
    """MobileNetV4 UIB: optional depthwise before and in the middle of an inverted bottleneck.

    start_dw_kernel / middle_dw_kernel of 0 leave that depthwise out, giving the
    paper's four forms: ExtraDW (both), IB (middle only), ConvNext (start only),
    FFN (neither).
    """

    start_dw_kernel: int
    middle_dw_kernel: int
    expansion: float
    filters: int
    stride: int
    activation: str = RE
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class MobileMQA:
    """MobileNetV4 Mobile multi-query attention: many query heads share one key and value.

    kv_stride > 1 downsamples keys and values with a strided depthwise conv.
    """

    filters: int
    heads: int
    key_dim: int
    kv_stride: int = 1
    dw_kernel: int = 3
    repeats: int = 1


Row = Union[
    ConvBnAct,
    DepthwiseSeparable,
    InvertedResidual,
    FusedInvertedResidual,
    UniversalInvertedBottleneck,
    MobileMQA,
]


@dataclasses.dataclass(frozen=True)
class Head:
    """Classifier after the last row: global pool, optional 1x1 "hidden" conv, classifier.

    classifier "conv" is a 1x1 conv on the pooled map (keras.applications V1/V3),
    "dense" a Dense layer (V2, timm's V4).
    """

    hidden: Optional[int]
    hidden_bias: bool
    hidden_norm: bool
    activation: Optional[str]
    classifier: Literal["conv", "dense"]
    dropout: float


@dataclasses.dataclass(frozen=True)
class Style:
    """Numerical conventions of the reference whose weights we load.

    padding before strided convs: "keras_v1" (pad right/bottom by one, as
    keras.applications MobileNet), "keras" (keras.applications' correct_pad),
    "symmetric" (k//2 on every side, as timm/PyTorch), "same" (TF 'same').
    The keras styles pad explicitly only before strided depthwise convs, and use
    'same' for strided full convs, as keras.applications does.
    """

    bn_epsilon: float
    bn_momentum: float
    padding: Literal["keras_v1", "keras", "symmetric", "same"]
    layer_scale: Optional[float] = None  # LayerScale init value in UIB/MQA blocks (V4 hybrid)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One MobileNet: its table of rows, its head and its conventions."""

    name: str
    family: Literal["v1", "v2", "v3", "v4"]
    rows: tuple
    head: Head
    style: Style
    default_size: int
    preprocessing: Literal["minus_one_to_one", "imagenet_mean_std"]


def with_activation(rows, activation):
    """The same rows with another activation (MobileNetV4 Hybrid-L uses GELU throughout)."""
    return tuple(
        dataclasses.replace(row, activation=activation) if hasattr(row, "activation") else row
        for row in rows
    )


def minimalistic(arch):
    """MobileNetV3 "minimalistic": 3x3 kernels, no squeeze-excite, ReLU instead of hard-swish."""

    def simplify(row):
        changes = {}
        if getattr(row, "activation", None) == HS:
            changes["activation"] = RE
        if isinstance(row, InvertedResidual):
            changes.update(kernel=3, se=False)
        return dataclasses.replace(row, **changes)

    head = dataclasses.replace(
        arch.head, activation=RE if arch.head.activation == HS else arch.head.activation
    )
    return dataclasses.replace(
        arch, name=arch.name + "_minimalistic", rows=tuple(map(simplify, arch.rows)), head=head
    )
