"""The MobileNet tables, row for row as in the papers (and their reference code).

V1-V3 follow keras.applications (whose ImageNet weights they load); V4 follows
timm's MobileNetV4 (whose ImageNet weights are the ones that exist).
"""
from keras_mobilenets.specs import (
    GELU,
    HS,
    R6,
    RE,
    Architecture,
    ConvBnAct as Conv,
    DepthwiseSeparable as DwSep,
    FusedInvertedResidual as FusedIB,
    Head,
    InvertedResidual as Bneck,
    MobileMQA as MQA,
    Style,
    UniversalInvertedBottleneck as UIB,
    with_activation,
)

KERAS_V1_STYLE = Style(bn_epsilon=1e-3, bn_momentum=0.99, padding="keras_v1")
KERAS_STYLE = Style(bn_epsilon=1e-3, bn_momentum=0.999, padding="keras")
TIMM_STYLE = Style(bn_epsilon=1e-5, bn_momentum=0.9, padding="symmetric")
TIMM_HYBRID_STYLE = Style(bn_epsilon=1e-5, bn_momentum=0.9, padding="symmetric", layer_scale=1e-5)

# MobileNets (Howard et al. 2017), Table 1.
V1 = Architecture(
    name="mobilenet_v1",
    family="v1",
    rows=(
        Conv(32, kernel=3, stride=2, activation=R6),
        DwSep(64, stride=1),
        DwSep(128, stride=2),
        DwSep(128, stride=1),
        DwSep(256, stride=2),
        DwSep(256, stride=1),
        DwSep(512, stride=2),
        DwSep(512, stride=1, repeats=5),
        DwSep(1024, stride=2),
        DwSep(1024, stride=1),
    ),
    head=Head(hidden=None, hidden_bias=False, hidden_norm=False, activation=None, classifier="conv", dropout=1e-3),
    style=KERAS_V1_STYLE,
    default_size=224,
    preprocessing="minus_one_to_one",
)

# MobileNetV2 (Sandler et al. 2018), Table 2: t (expansion), c, n (repeats), s.
V2 = Architecture(
    name="mobilenet_v2",
    family="v2",
    rows=(
        Conv(32, kernel=3, stride=2, activation=R6),
        Bneck(1, 16, kernel=3, stride=1, repeats=1),
        Bneck(6, 24, kernel=3, stride=2, repeats=2),
        Bneck(6, 32, kernel=3, stride=2, repeats=3),
        Bneck(6, 64, kernel=3, stride=2, repeats=4),
        Bneck(6, 96, kernel=3, stride=1, repeats=3),
        Bneck(6, 160, kernel=3, stride=2, repeats=3),
        Bneck(6, 320, kernel=3, stride=1, repeats=1),
        Conv(1280, kernel=1, stride=1, activation=R6, width="grow_only"),
    ),
    head=Head(hidden=None, hidden_bias=False, hidden_norm=False, activation=None, classifier="dense", dropout=0.0),
    style=KERAS_STYLE,
    default_size=224,
    preprocessing="minus_one_to_one",
)

# Searching for MobileNetV3 (Howard et al. 2019), Table 2: exp size / input, #out, SE, NL, s.
V3_SMALL = Architecture(
    name="mobilenet_v3_small",
    family="v3",
    rows=(
        Conv(16, kernel=3, stride=2, activation=HS, width="fixed"),
        Bneck(16 / 16, 16, kernel=3, stride=2, se=True, activation=RE),
        Bneck(72 / 16, 24, kernel=3, stride=2, activation=RE),
        Bneck(88 / 24, 24, kernel=3, stride=1, activation=RE),
        Bneck(96 / 24, 40, kernel=5, stride=2, se=True, activation=HS),
        Bneck(240 / 40, 40, kernel=5, stride=1, se=True, activation=HS),
        Bneck(240 / 40, 40, kernel=5, stride=1, se=True, activation=HS),
        Bneck(120 / 40, 48, kernel=5, stride=1, se=True, activation=HS),
        Bneck(144 / 48, 48, kernel=5, stride=1, se=True, activation=HS),
        Bneck(288 / 48, 96, kernel=5, stride=2, se=True, activation=HS),
        Bneck(576 / 96, 96, kernel=5, stride=1, se=True, activation=HS),
        Bneck(576 / 96, 96, kernel=5, stride=1, se=True, activation=HS),
        Conv(576, kernel=1, stride=1, activation=HS, width="six_times_input"),
    ),
    head=Head(hidden=1024, hidden_bias=True, hidden_norm=False, activation=HS, classifier="conv", dropout=0.2),
    style=KERAS_STYLE,
    default_size=224,
    preprocessing="minus_one_to_one",
)

# Searching for MobileNetV3, Table 1.
V3_LARGE = Architecture(
    name="mobilenet_v3_large",
    family="v3",
    rows=(
        Conv(16, kernel=3, stride=2, activation=HS, width="fixed"),
        Bneck(16 / 16, 16, kernel=3, stride=1, activation=RE),
        Bneck(64 / 16, 24, kernel=3, stride=2, activation=RE),
        Bneck(72 / 24, 24, kernel=3, stride=1, activation=RE),
        Bneck(72 / 24, 40, kernel=5, stride=2, se=True, activation=RE),
        Bneck(120 / 40, 40, kernel=5, stride=1, se=True, activation=RE),
        Bneck(120 / 40, 40, kernel=5, stride=1, se=True, activation=RE),
        Bneck(240 / 40, 80, kernel=3, stride=2, activation=HS),
        Bneck(200 / 80, 80, kernel=3, stride=1, activation=HS),
        Bneck(184 / 80, 80, kernel=3, stride=1, activation=HS),
        Bneck(184 / 80, 80, kernel=3, stride=1, activation=HS),
        Bneck(480 / 80, 112, kernel=3, stride=1, se=True, activation=HS),
        Bneck(672 / 112, 112, kernel=3, stride=1, se=True, activation=HS),
        Bneck(672 / 112, 160, kernel=5, stride=2, se=True, activation=HS),
        Bneck(960 / 160, 160, kernel=5, stride=1, se=True, activation=HS),
        Bneck(960 / 160, 160, kernel=5, stride=1, se=True, activation=HS),
        Conv(960, kernel=1, stride=1, activation=HS, width="six_times_input"),
    ),
    head=Head(hidden=1280, hidden_bias=True, hidden_norm=False, activation=HS, classifier="conv", dropout=0.2),
    style=KERAS_STYLE,
    default_size=224,
    preprocessing="minus_one_to_one",
)


def _v4_head(activation):
    return Head(hidden=1280, hidden_bias=False, hidden_norm=True, activation=activation, classifier="dense", dropout=0.2)


# MobileNetV4 (Qin et al. 2024), Tables 10-14, as timm writes them.
# UIB(start dw, middle dw, expansion, filters, stride): ExtraDW (k, k), IB (0, k),
# ConvNext (k, 0), FFN (0, 0).
V4_CONV_SMALL = Architecture(
    name="mobilenet_v4_conv_small",
    family="v4",
    rows=(
        Conv(32, kernel=3, stride=2, activation=RE),
        Conv(32, kernel=3, stride=2, activation=RE),
        Conv(32, kernel=1, stride=1, activation=RE),
        Conv(96, kernel=3, stride=2, activation=RE),
        Conv(64, kernel=1, stride=1, activation=RE),
        UIB(5, 5, 3.0, 96, stride=2),
        UIB(0, 3, 2.0, 96, stride=1, repeats=4),
        UIB(3, 0, 4.0, 96, stride=1),
        UIB(3, 3, 6.0, 128, stride=2),
        UIB(5, 5, 4.0, 128, stride=1),
        UIB(0, 5, 4.0, 128, stride=1),
        UIB(0, 5, 3.0, 128, stride=1),
        UIB(0, 3, 4.0, 128, stride=1, repeats=2),
        Conv(960, kernel=1, stride=1, activation=RE),
    ),
    head=_v4_head(RE),
    style=TIMM_STYLE,
    default_size=224,
    preprocessing="imagenet_mean_std",
)

V4_CONV_MEDIUM = Architecture(
    name="mobilenet_v4_conv_medium",
    family="v4",
    rows=(
        Conv(32, kernel=3, stride=2, activation=RE),
        FusedIB(4.0, 48, kernel=3, stride=2),
        UIB(3, 5, 4.0, 80, stride=2),
        UIB(3, 3, 2.0, 80, stride=1),
        UIB(3, 5, 6.0, 160, stride=2),
        UIB(3, 3, 4.0, 160, stride=1, repeats=2),
        UIB(3, 5, 4.0, 160, stride=1),
        UIB(3, 3, 4.0, 160, stride=1),
        UIB(3, 0, 4.0, 160, stride=1),
        UIB(0, 0, 2.0, 160, stride=1),
        UIB(3, 0, 4.0, 160, stride=1),
        UIB(5, 5, 6.0, 256, stride=2),
        UIB(5, 5, 4.0, 256, stride=1),
        UIB(3, 5, 4.0, 256, stride=1, repeats=2),
        UIB(0, 0, 4.0, 256, stride=1),
        UIB(3, 0, 4.0, 256, stride=1),
        UIB(3, 5, 2.0, 256, stride=1),
        UIB(5, 5, 4.0, 256, stride=1),
        UIB(0, 0, 4.0, 256, stride=1, repeats=2),
        UIB(5, 0, 2.0, 256, stride=1),
        Conv(960, kernel=1, stride=1, activation=RE),
    ),
    head=_v4_head(RE),
    style=TIMM_STYLE,
    default_size=256,
    preprocessing="imagenet_mean_std",
)

V4_CONV_LARGE = Architecture(
    name="mobilenet_v4_conv_large",
    family="v4",
    rows=(
        Conv(24, kernel=3, stride=2, activation=RE),
        FusedIB(4.0, 48, kernel=3, stride=2),
        UIB(3, 5, 4.0, 96, stride=2),
        UIB(3, 3, 4.0, 96, stride=1),
        UIB(3, 5, 4.0, 192, stride=2),
        UIB(3, 3, 4.0, 192, stride=1, repeats=3),
        UIB(3, 5, 4.0, 192, stride=1),
        UIB(5, 3, 4.0, 192, stride=1, repeats=5),
        UIB(3, 0, 4.0, 192, stride=1),
        UIB(5, 5, 4.0, 512, stride=2, repeats=4),
        UIB(5, 0, 4.0, 512, stride=1),
        UIB(5, 3, 4.0, 512, stride=1),
        UIB(5, 0, 4.0, 512, stride=1, repeats=2),
        UIB(5, 3, 4.0, 512, stride=1),
        UIB(5, 5, 4.0, 512, stride=1),
        UIB(5, 0, 4.0, 512, stride=1, repeats=3),
        Conv(960, kernel=1, stride=1, activation=RE),
    ),
    head=_v4_head(RE),
    style=TIMM_STYLE,
    default_size=384,
    preprocessing="imagenet_mean_std",
)

V4_HYBRID_MEDIUM = Architecture(
    name="mobilenet_v4_hybrid_medium",
    family="v4",
    rows=(
        Conv(32, kernel=3, stride=2, activation=RE),
        FusedIB(4.0, 48, kernel=3, stride=2),
        UIB(3, 5, 4.0, 80, stride=2),
        UIB(3, 3, 2.0, 80, stride=1),
        UIB(3, 5, 6.0, 160, stride=2),
        UIB(0, 0, 2.0, 160, stride=1),
        UIB(3, 3, 4.0, 160, stride=1),
        UIB(3, 5, 4.0, 160, stride=1),
        MQA(160, heads=4, key_dim=64, kv_stride=2),
        UIB(3, 3, 4.0, 160, stride=1),
        MQA(160, heads=4, key_dim=64, kv_stride=2),
        UIB(3, 0, 4.0, 160, stride=1),
        MQA(160, heads=4, key_dim=64, kv_stride=2),
        UIB(3, 3, 4.0, 160, stride=1),
        MQA(160, heads=4, key_dim=64, kv_stride=2),
        UIB(3, 0, 4.0, 160, stride=1),
        UIB(5, 5, 6.0, 256, stride=2),
        UIB(5, 5, 4.0, 256, stride=1),
        UIB(3, 5, 4.0, 256, stride=1, repeats=2),
        UIB(0, 0, 2.0, 256, stride=1),
        UIB(3, 5, 2.0, 256, stride=1),
        UIB(0, 0, 2.0, 256, stride=1),
        UIB(0, 0, 4.0, 256, stride=1),
        MQA(256, heads=4, key_dim=64),
        UIB(3, 0, 4.0, 256, stride=1),
        MQA(256, heads=4, key_dim=64),
        UIB(5, 5, 4.0, 256, stride=1),
        MQA(256, heads=4, key_dim=64),
        UIB(5, 0, 4.0, 256, stride=1),
        MQA(256, heads=4, key_dim=64),
        UIB(5, 0, 4.0, 256, stride=1),
        Conv(960, kernel=1, stride=1, activation=RE),
    ),
    head=_v4_head(RE),
    style=TIMM_HYBRID_STYLE,
    default_size=256,
    preprocessing="imagenet_mean_std",
)

V4_HYBRID_LARGE = Architecture(
    name="mobilenet_v4_hybrid_large",
    family="v4",
    rows=with_activation(
        (
            Conv(24, kernel=3, stride=2, activation=RE),
            FusedIB(4.0, 48, kernel=3, stride=2),
            UIB(3, 5, 4.0, 96, stride=2),
            UIB(3, 3, 4.0, 96, stride=1),
            UIB(3, 5, 4.0, 192, stride=2),
            UIB(3, 3, 4.0, 192, stride=1, repeats=3),
            UIB(3, 5, 4.0, 192, stride=1),
            UIB(5, 3, 4.0, 192, stride=1, repeats=2),
            MQA(192, heads=8, key_dim=48, kv_stride=2),
            UIB(5, 3, 4.0, 192, stride=1),
            MQA(192, heads=8, key_dim=48, kv_stride=2),
            UIB(5, 3, 4.0, 192, stride=1),
            MQA(192, heads=8, key_dim=48, kv_stride=2),
            UIB(5, 3, 4.0, 192, stride=1),
            MQA(192, heads=8, key_dim=48, kv_stride=2),
            UIB(3, 0, 4.0, 192, stride=1),
            UIB(5, 5, 4.0, 512, stride=2, repeats=4),
            UIB(5, 0, 4.0, 512, stride=1),
            UIB(5, 3, 4.0, 512, stride=1),
            UIB(5, 0, 4.0, 512, stride=1, repeats=2),
            UIB(5, 3, 4.0, 512, stride=1),
            UIB(5, 5, 4.0, 512, stride=1),
            MQA(512, heads=8, key_dim=64),
            UIB(5, 0, 4.0, 512, stride=1),
            MQA(512, heads=8, key_dim=64),
            UIB(5, 0, 4.0, 512, stride=1),
            MQA(512, heads=8, key_dim=64),
            UIB(5, 0, 4.0, 512, stride=1),
            MQA(512, heads=8, key_dim=64),
            UIB(5, 0, 4.0, 512, stride=1),
            Conv(960, kernel=1, stride=1, activation=RE),
        ),
        GELU,
    ),
    head=_v4_head(GELU),
    style=TIMM_HYBRID_STYLE,
    default_size=384,
    preprocessing="imagenet_mean_std",
)
