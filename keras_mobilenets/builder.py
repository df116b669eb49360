"""One builder: turns an architecture table into a functional Keras model."""
import dataclasses

from keras_mobilenets import blocks
from keras_mobilenets.kit import active_kit
from keras_mobilenets.specs import (
    ConvBnAct,
    DepthwiseSeparable,
    FusedInvertedResidual,
    InvertedResidual,
    MobileMQA,
    UniversalInvertedBottleneck,
)

# timm's ImageNet normalization, on 0..1 pixels (the V4 weights were trained with it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BLOCKS = {
    ConvBnAct: blocks.conv_bn,
    DepthwiseSeparable: blocks.depthwise_separable,
    InvertedResidual: blocks.inverted_residual,
    FusedInvertedResidual: blocks.fused_inverted_residual,
    UniversalInvertedBottleneck: blocks.universal_inverted_bottleneck,
    MobileMQA: blocks.mobile_mqa,
}


def scaled_filters(arch, row, alpha, in_channels):
    """Output channels of `row` under width multiplier `alpha`, by each reference's rounding."""
    width = getattr(row, "width", "scaled")
    if width == "fixed" or arch.family == "v4":
        return row.filters
    if width == "six_times_input":
        return blocks.make_divisible(in_channels * 6)
    if width == "grow_only":
        return blocks.make_divisible(row.filters * alpha) if alpha > 1 else row.filters
    if arch.family == "v1":
        return int(row.filters * alpha)
    if arch.family == "v2" and isinstance(row, InvertedResidual):
        return blocks.make_divisible(int(row.filters * alpha))
    return blocks.make_divisible(row.filters * alpha)


def _preprocessing(arch, channels):
    """Maps RGB 0..255 to what the weights were trained on."""
    rescaling = active_kit().keras.layers.Rescaling
    if arch.preprocessing == "minus_one_to_one":
        return rescaling(1 / 127.5, offset=-1.0, name="preprocessing")
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if channels == 1:  # grayscale: the channel means of timm's constants
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    scale = [1 / (255.0 * s) for s in std]
    offset = [-m / s for m, s in zip(mean, std)]
    return rescaling(scale, offset=offset, name="preprocessing")


def _block_kwargs(row, filters, first_repeat):
    """The row's fields as block arguments; as in the papers, only the first repeat strides."""
    kwargs = dataclasses.asdict(row)
    kwargs.pop("repeats")
    kwargs.pop("width", None)
    kwargs["filters"] = filters
    if "stride" in kwargs and not first_repeat:
        kwargs["stride"] = 1
    return kwargs


def _classifier_head(x, arch, alpha, classes, classifier_activation, dropout_rate):
    layers = active_kit().keras.layers
    head = arch.head
    x = layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(x)
    if head.hidden is not None:
        hidden = blocks.make_divisible(head.hidden * alpha) if alpha > 1 else head.hidden
        x = layers.Conv2D(hidden, 1, use_bias=head.hidden_bias, name="head_hidden_conv")(x)
        if head.hidden_norm:
            x = blocks.batch_norm(x, arch.style, "head_hidden_bn")
        x = blocks.activate(x, head.activation, "head_hidden")
    if head.classifier == "dense":
        x = layers.Reshape((x.shape[-1],), name="head_flatten")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name="head_dropout")(x)
    if head.classifier == "conv":
        x = layers.Conv2D(classes, 1, name="head_logits")(x)
        x = layers.Reshape((classes,), name="head_flatten")(x)
    else:
        x = layers.Dense(classes, name="head_logits")(x)
    if classifier_activation is None:
        return x
    return layers.Activation(classifier_activation, name="predictions")(x)


def build_model(
    arch,
    *,
    input_shape,
    input_tensor=None,
    include_top=True,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    dropout_rate=None,
    include_preprocessing=True,
    alpha=1.0,
    depth_multiplier=1,
    name=None,
    variant=None,
    build_arguments=None,
):
    """Build `arch` as a functional model. Arguments are checked by the public builders.

    `variant` and `build_arguments` are the record a Keras 3 model keeps of how
    it was built (see layers.MobileNet).
    """
    kit = active_kit()
    keras = kit.keras
    if input_tensor is None:
        inputs = keras.layers.Input(shape=input_shape, name="image")
    else:
        inputs = input_tensor
    x = inputs
    if include_preprocessing:
        x = _preprocessing(arch, input_shape[-1])(x)

    index = 0
    for row in arch.rows:
        block = _BLOCKS[type(row)]
        for repeat in range(row.repeats):
            filters = scaled_filters(arch, row, alpha, x.shape[-1])
            kwargs = _block_kwargs(row, filters, first_repeat=repeat == 0)
            if isinstance(row, DepthwiseSeparable):
                kwargs["depth_multiplier"] = depth_multiplier
            x = block(x, **kwargs, style=arch.style, name="stem" if index == 0 else f"block{index}")
            index += 1

    if include_top:
        rate = arch.head.dropout if dropout_rate is None else dropout_rate
        x = _classifier_head(x, arch, alpha, classes, classifier_activation, rate)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    model_inputs = inputs if input_tensor is None else keras.utils.get_source_inputs(input_tensor)
    return kit.model(model_inputs, x, name=name or arch.name, variant=variant, build_arguments=build_arguments)
