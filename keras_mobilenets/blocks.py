"""The MobileNet building blocks.

Each block is a function that adds named layers to a functional graph: it takes
the input tensor, its settings (the fields of a table row), the `style` of the
reference implementation (batch-norm constants, padding) and a `name` prefix.
They build with whichever Keras `kit.active_kit()` names (Keras 3 by default).
"""
from keras_mobilenets.kit import active_kit


def make_divisible(value, divisor=8):
    """Round a channel count to a multiple of `divisor`, never below 90% of it (the papers' rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _layers():
    return active_kit().keras.layers


def activate(x, activation, name):
    """Apply `activation` ("relu", "relu6", "hard_swish", "hard_sigmoid", "gelu"; None: none)."""
    if activation is None:
        return x
    return active_kit().activation(activation, f"{name}_{activation}")(x)


def _pad_for_stride(x, kernel, stride, style, depthwise, name):
    """Explicit padding before a strided conv, as the reference does; returns (x, conv padding)."""
    if stride == 1 or style.padding == "same":
        return x, "same"
    if style.padding == "symmetric":
        pad = ((stride - 1) + (kernel - 1)) // 2  # PyTorch/timm: the same on every side
    elif not depthwise:
        return x, "same"  # keras.applications' strided full convs use TF 'same'
    elif style.padding == "keras_v1":
        pad = ((0, 1), (0, 1))
    else:  # keras.applications' correct_pad
        rows, cols = x.shape[1], x.shape[2]
        adjust = (1, 1) if rows is None or cols is None else (1 - rows % 2, 1 - cols % 2)
        half = kernel // 2
        pad = ((half - adjust[0], half), (half - adjust[1], half))
    return _layers().ZeroPadding2D(pad, name=f"{name}_pad")(x), "valid"


def batch_norm(x, style, name):
    return _layers().BatchNormalization(
        epsilon=style.bn_epsilon, momentum=style.bn_momentum, name=name
    )(x)


def conv_bn(x, filters, kernel, stride=1, activation=None, *, style, name):
    """Full convolution (no bias) + batch norm + activation."""
    x, padding = _pad_for_stride(x, kernel, stride, style, depthwise=False, name=name)
    x = _layers().Conv2D(
        filters, kernel, strides=stride, padding=padding, use_bias=False, name=f"{name}_conv"
    )(x)
    x = batch_norm(x, style, f"{name}_bn")
    return activate(x, activation, name)


def depthwise_bn(x, kernel, stride=1, activation=None, *, style, name, depth_multiplier=1):
    """Depthwise convolution (no bias) + batch norm + activation."""
    x, padding = _pad_for_stride(x, kernel, stride, style, depthwise=True, name=name)
    x = _layers().DepthwiseConv2D(
        kernel,
        strides=stride,
        padding=padding,
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"{name}_dwconv",
    )(x)
    x = batch_norm(x, style, f"{name}_dwbn")
    return activate(x, activation, f"{name}_dw")


def squeeze_excite(x, squeeze_filters, *, name):
    """Squeeze-and-excite (MobileNetV3): reweigh channels by a gate computed from their means."""
    layers = _layers()
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    gate = layers.Conv2D(squeeze_filters, 1, name=f"{name}_se_reduce")(gate)
    gate = activate(gate, "relu", f"{name}_se")
    gate = layers.Conv2D(x.shape[-1], 1, name=f"{name}_se_expand")(gate)
    gate = activate(gate, "hard_sigmoid", f"{name}_se")
    return layers.Multiply(name=f"{name}_se_scale")([x, gate])


def _residual(shortcut, x, stride, *, style, name):
    """Layer scale (V4 hybrid) and the skip connection when shapes allow it."""
    if style.layer_scale is not None:
        x = active_kit().layer_scale(style.layer_scale, name=f"{name}_layer_scale")(x)
    if stride == 1 and shortcut.shape[-1] == x.shape[-1]:
        x = _layers().Add(name=f"{name}_add")([shortcut, x])
    return x


def depthwise_separable(x, filters, stride, *, style, name, depth_multiplier=1):
    """MobileNetV1 block: 3x3 depthwise + BN + ReLU6, 1x1 pointwise + BN + ReLU6."""
    x = depthwise_bn(
        x, 3, stride, "relu6", style=style, name=name, depth_multiplier=depth_multiplier
    )
    return conv_bn(x, filters, 1, activation="relu6", style=style, name=f"{name}_pw")


def inverted_residual(x, expansion, filters, kernel, stride, se, activation, *, style, name):
    """MobileNetV2/V3 bottleneck: expand 1x1, depthwise kxk, optional SE, linear 1x1 projection."""
    shortcut = x
    expanded = make_divisible(x.shape[-1] * expansion)
    if expansion != 1:
        x = conv_bn(x, expanded, 1, activation=activation, style=style, name=f"{name}_expand")
    x = depthwise_bn(x, kernel, stride, activation, style=style, name=name)
    if se:
        x = squeeze_excite(x, make_divisible(expanded * 0.25), name=name)
    x = conv_bn(x, filters, 1, style=style, name=f"{name}_project")
    return _residual(shortcut, x, stride, style=style, name=name)


def fused_inverted_residual(x, expansion, filters, kernel, stride, activation, *, style, name):
    """MobileNetV4 FusedIB: full kxk expansion conv, linear 1x1 projection."""
    shortcut = x
    expanded = make_divisible(x.shape[-1] * expansion)
    x = conv_bn(x, expanded, kernel, stride, activation, style=style, name=f"{name}_expand")
    x = conv_bn(x, filters, 1, style=style, name=f"{name}_project")
    if stride == 1 and shortcut.shape[-1] == filters:
        x = _layers().Add(name=f"{name}_add")([shortcut, x])
    return x


def universal_inverted_bottleneck(
    x, start_dw_kernel, middle_dw_kernel, expansion, filters, stride, activation, *, style, name
):
    """MobileNetV4 UIB: [depthwise] -> expand 1x1 -> [depthwise] -> linear 1x1 projection.

    The block strides in the middle depthwise when it has one, else in the first.
    """
    shortcut = x
    expanded = make_divisible(x.shape[-1] * expansion)
    if start_dw_kernel:
        start_stride = 1 if middle_dw_kernel else stride
        x = depthwise_bn(x, start_dw_kernel, start_stride, style=style, name=f"{name}_start")
    x = conv_bn(x, expanded, 1, activation=activation, style=style, name=f"{name}_expand")
    if middle_dw_kernel:
        x = depthwise_bn(
            x, middle_dw_kernel, stride, activation, style=style, name=f"{name}_middle"
        )
    x = conv_bn(x, filters, 1, style=style, name=f"{name}_project")
    return _residual(shortcut, x, stride, style=style, name=name)


def mobile_mqa(x, filters, heads, key_dim, kv_stride, dw_kernel, *, style, name):
    """MobileNetV4 Mobile MQA: `heads` query heads attend to one shared key and value head.

    Built from stock layers (1x1 convs, Reshape, Dot, Softmax) so that it
    converts to plain TFLite ops and each step can be quantized.
    """
    layers = _layers()
    rows, cols = x.shape[1], x.shape[2]
    if rows is None or cols is None:
        raise ValueError(
            "input_shape: MobileNetV4 hybrid models (Mobile MQA attention) need a fixed "
            "input size such as (256, 256, 3), not None"
        )
    shortcut = x
    x = batch_norm(x, style, f"{name}_norm")
    query = layers.Conv2D(heads * key_dim, 1, use_bias=False, name=f"{name}_query")(x)
    query = layers.Rescaling(key_dim**-0.5, name=f"{name}_query_scale")(query)
    query = layers.Reshape((rows * cols * heads, key_dim), name=f"{name}_query_heads")(query)

    def shared_head(role):
        y = x
        if kv_stride > 1:
            y = depthwise_bn(y, dw_kernel, kv_stride, style=style, name=f"{name}_{role}_down")
        y = layers.Conv2D(key_dim, 1, use_bias=False, name=f"{name}_{role}")(y)
        return layers.Reshape((y.shape[1] * y.shape[2], key_dim), name=f"{name}_{role}_flat")(y)

    key, value = shared_head("key"), shared_head("value")
    scores = layers.Dot(axes=(2, 2), name=f"{name}_scores")([query, key])
    weights = layers.Softmax(axis=-1, name=f"{name}_softmax")(scores)
    attended = layers.Dot(axes=(2, 1), name=f"{name}_attend")([weights, value])
    attended = layers.Reshape((rows, cols, heads * key_dim), name=f"{name}_merge_heads")(attended)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_output")(attended)
    return _residual(shortcut, x, 1, style=style, name=name)
