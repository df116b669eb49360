"""The public builders: `V1()` ... `V4HybridLarge()`, and `build(name, **kwargs)`.

Arguments follow keras.applications. Every argument is checked before anything
is built, and a bad one is a ValueError that names it and what is allowed.
Each builder is a plain function with its real signature (what an IDE shows);
the argument documentation they share is written once, in `_document`.
"""
import inspect
import numbers
import os

from keras_mobilenets import architectures, weights as weight_files
from keras_mobilenets.builder import build_model
from keras_mobilenets.specs import MobileMQA, minimalistic as make_minimalistic

MIN_SIZE = 32
ALPHA_RANGE = (0.1, 2.0)


def _check(condition, argument, message):
    if not condition:
        raise ValueError(f"{argument}: {message}")


def _resolve_input_shape(arch, input_shape, input_tensor, weights):
    if input_tensor is not None:
        _check(hasattr(input_tensor, "shape") and len(input_tensor.shape) == 4,
               "input_tensor", "must be a Keras tensor of shape (batch, height, width, channels)")
        tensor_shape = tuple(input_tensor.shape[1:])
        _check(input_shape is None or tuple(input_shape) == tensor_shape, "input_shape",
               f"{input_shape} disagrees with input_tensor's shape {tensor_shape}")
        input_shape = tensor_shape
    if input_shape is None:
        return (arch.default_size, arch.default_size, 3)
    _check(isinstance(input_shape, (tuple, list)) and len(input_shape) == 3, "input_shape",
           f"must be (height, width, channels), got {input_shape!r}")
    rows, cols, channels = input_shape
    for size in (rows, cols):
        _check(size is None or (isinstance(size, numbers.Integral) and size >= MIN_SIZE),
               "input_shape", f"height and width must be integers >= {MIN_SIZE} (or None), got {input_shape!r}")
    if any(isinstance(row, MobileMQA) for row in arch.rows):
        _check(rows is not None and cols is not None, "input_shape",
               f"{arch.name} has attention layers and needs a fixed size, got {input_shape!r}")
    allowed = (3,) if weights is not None else (1, 3)
    _check(channels in allowed, "input_shape",
           f"channels must be one of {allowed}{' with weights' if weights is not None else ''}, "
           f"got {channels!r}")
    return tuple(input_shape)


def _is_path_list(weights):
    """Parts of one checkpoint (a timm checkpoint may be split into several .safetensors files)."""
    return (isinstance(weights, (list, tuple)) and len(weights) > 0
            and all(isinstance(part, (str, os.PathLike)) for part in weights))


def _check_common(include_top, pooling, classes, dropout_rate, weights, parts_allowed=False):
    _check(isinstance(include_top, bool), "include_top", f"must be True or False, got {include_top!r}")
    _check(pooling in (None, "avg", "max"), "pooling", f"must be None, 'avg' or 'max', got {pooling!r}")
    _check(isinstance(classes, numbers.Integral) and not isinstance(classes, bool) and classes >= 1,
           "classes", f"must be a positive integer, got {classes!r}")
    _check(dropout_rate is None or (isinstance(dropout_rate, numbers.Real) and 0 <= dropout_rate < 1),
           "dropout_rate", f"must be None or in [0, 1), got {dropout_rate!r}")
    parts = parts_allowed and _is_path_list(weights)
    allowed = "None, 'imagenet' or a file path" + (" (or a list of parts)" if parts_allowed else "")
    _check(weights is None or weights == "imagenet" or isinstance(weights, (str, os.PathLike)) or parts,
           "weights", f"must be {allowed}, got {weights!r}")
    if parts:
        _check(all(os.fspath(part).endswith(".safetensors") for part in weights), "weights",
               f"a list of files must be the .safetensors parts of one timm checkpoint, got {weights!r}")
    if weights == "imagenet" and include_top:
        _check(classes == 1000, "classes",
               f"ImageNet weights with include_top=True need classes=1000, got {classes}; "
               "use include_top=False (or weights=None) for another number of classes")


def _check_alpha(alpha, family, weights):
    _check(isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)
           and ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1],
           "alpha", f"must be a number in [{ALPHA_RANGE[0]}, {ALPHA_RANGE[1]}], got {alpha!r}")
    if weights == "imagenet":
        _check(alpha in weight_files.IMAGENET_ALPHAS[family], "alpha",
               f"ImageNet weights exist for alpha in {weight_files.IMAGENET_ALPHAS[family]}, got {alpha}")


def _finish(model, weights, imagenet_file):
    """Load `weights` (None, "imagenet" or a path) into a freshly built model."""
    if weights == "imagenet":
        weights = weight_files.download(*imagenet_file())
    if weights is not None:
        weight_files.load_weights_file(model, weights)
    return model


# Builder arguments that do not decide the layers, so the model's record leaves them out.
_NOT_ARCHITECTURE = ("weights", "input_tensor", "name")


def _record(arguments, shape):
    """What `build(variant, **record)` needs to build the same layers again (see layers.MobileNet)."""
    record = {key: value for key, value in arguments.items() if key not in _NOT_ARCHITECTURE}
    record["input_shape"] = list(shape)
    activation = record["classifier_activation"]
    if not (activation is None or isinstance(activation, str)):
        del record["classifier_activation"]  # a function is no JSON; it has no weights either
    return record


def _build(arch, variant, arguments, shape):
    """build_model with a builder's (checked) arguments, recording them on the model."""
    return build_model(
        arch, input_shape=shape, input_tensor=arguments["input_tensor"],
        include_top=arguments["include_top"], pooling=arguments["pooling"], classes=arguments["classes"],
        classifier_activation=arguments["classifier_activation"], dropout_rate=arguments["dropout_rate"],
        include_preprocessing=arguments["include_preprocessing"], alpha=arguments.get("alpha", 1.0),
        depth_multiplier=arguments.get("depth_multiplier", 1), name=arguments["name"],
        variant=variant, build_arguments=_record(arguments, shape),
    )


def _keras_family_model(arch, family, variant, arguments, imagenet_file):
    """V1-V3: checked, built, recorded, and loaded with keras.applications-format weights."""
    weights = arguments["weights"]
    _check_common(arguments["include_top"], arguments["pooling"], arguments["classes"],
                  arguments["dropout_rate"], weights)
    _check_alpha(arguments["alpha"], family, weights)
    shape = _resolve_input_shape(arch, arguments["input_shape"], arguments["input_tensor"], weights)
    model = _build(arch, variant, arguments, shape)
    return _finish(model, weights, lambda: imagenet_file(shape[0]))


_SHARED_ARGUMENTS = """\
    include_top: whether to include the classifier head. Default True.
    weights: {weights}
    input_tensor: optional Keras tensor (the output of `keras.Input()`) to
        build the model on; its shape is the input shape. Default None.
    pooling: with `include_top=False`, None (the default: the last block's
        4D feature map), "avg" or "max" (global pooling to a 2D output).
    classes: number of classes of the classifier head. Default 1000, the
        only value with `weights="imagenet"` and `include_top=True`.
    classifier_activation: activation of the head's output: "softmax" (the
        default), None for logits, or any Keras activation.
    dropout_rate: dropout before the classifier, in [0, 1); None (the
        default) takes the architecture's ({dropout}).
    include_preprocessing: True (the default): the model takes RGB in
        0..255 and normalizes inside ({normalization}); False: it takes
        inputs already normalized.
    name: the model's name. Default: the architecture's ("{arch_name}").

Returns:
    A `keras_mobilenets.MobileNet`: a functional Keras 3 model that records
    how it was built (`model.variant`, `model.build_arguments`), which the
    quantization-aware training stage reads.

Raises:
    ValueError: an argument of the wrong type or out of range (the message
        names it and what is allowed), or a weights file that does not fit
        the model (the model is then left as it was).
"""

_INPUT_SHAPE = """\
    input_shape: (height, width, channels) of the input images. Default
        ({size}, {size}, 3). Height and width: integers from 32 up{sizes}.
        Channels: 3, or 1 without weights.
"""

_KERAS_APPLICATIONS_WEIGHTS = """None (random initialization, the default), "imagenet"
        (keras.applications' published file for these arguments, downloaded
        once into ~/.keras/models; input sizes {sizes} have their own file,
        others load the 224 one with a warning), or the path of a .keras,
        .weights.h5 or keras.applications .h5 file."""
_TIMM_WEIGHTS = """None (random initialization, the default), "imagenet" (timm's
        ImageNet checkpoint, downloaded once into ~/.keras/models and
        converted), a timm .safetensors checkpoint (one file or a list of
        its parts), or a .keras / .weights.h5 file. Pickle checkpoints
        (.pth, .bin, ...) are refused."""


def _document(arch, summary, own_arguments=""):
    """A builder's docstring: its summary and own arguments, then the arguments all builders share."""
    sizes = (" (fixed: the attention layers need them)" if any(isinstance(row, MobileMQA) for row in arch.rows)
             else ", or None for any size")
    weights = (_KERAS_APPLICATIONS_WEIGHTS.format(sizes=", ".join(map(str, weight_files.IMAGENET_SIZES[arch.family])))
               if arch.family != "v4" else _TIMM_WEIGHTS)
    normalization = "to -1..1" if arch.preprocessing == "minus_one_to_one" else "by the ImageNet mean and std"

    def decorate(builder):
        builder.__doc__ = (
            f"{summary}\n\nArgs:\n" + _INPUT_SHAPE.format(size=arch.default_size, sizes=sizes) + own_arguments
            + _SHARED_ARGUMENTS.format(weights=weights, dropout=arch.head.dropout or "none",
                                       normalization=normalization, arch_name=arch.name))
        return builder

    return decorate


def _alpha_argument(family):
    alphas = ", ".join(map(str, weight_files.IMAGENET_ALPHAS[family]))
    return (f"    alpha: width multiplier, a number in [{ALPHA_RANGE[0]}, {ALPHA_RANGE[1]}]: the\n"
            f"        channels of every layer scaled by it. Default 1.0. ImageNet weights\n"
            f"        exist for {alphas}.\n")


@_document(architectures.V1, "MobileNetV1: depthwise separable convolutions (Howard et al., 2017).\n\n"
           "The same graph as keras.applications.MobileNet, whose weight files load into it.",
           _alpha_argument("v1") + "    depth_multiplier: channels per input channel of each depthwise\n"
           "        convolution, an integer from 1 to 8 (ImageNet weights: 1). Default 1.\n")
def V1(input_shape=None, alpha=1.0, depth_multiplier=1, include_top=True, weights=None,
       input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
       dropout_rate=None, include_preprocessing=True, name=None):
    arguments = dict(locals())  # the builder's arguments by name, for the checks and the record
    _check(isinstance(depth_multiplier, numbers.Integral) and 1 <= depth_multiplier <= 8,
           "depth_multiplier", f"must be an integer from 1 to 8, got {depth_multiplier!r}")
    if weights == "imagenet":
        _check(depth_multiplier == 1, "depth_multiplier", "ImageNet weights exist only for 1")
    return _keras_family_model(
        architectures.V1, "v1", "v1", arguments,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v1", alpha=alpha, include_top=include_top, size=size),
    )


@_document(architectures.V2, "MobileNetV2: inverted residuals and linear bottlenecks (Sandler et al., 2018).\n\n"
           "The same graph as keras.applications.MobileNetV2, whose weight files load into it.",
           _alpha_argument("v2"))
def V2(input_shape=None, alpha=1.0, include_top=True, weights=None, input_tensor=None,
       pooling=None, classes=1000, classifier_activation="softmax", dropout_rate=None,
       include_preprocessing=True, name=None):
    arguments = dict(locals())  # the builder's arguments by name, for the checks and the record
    return _keras_family_model(
        architectures.V2, "v2", "v2", arguments,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v2", alpha=alpha, include_top=include_top, size=size),
    )


def _v3(arch, variant, model_type, arguments):
    minimalistic, alpha = arguments["minimalistic"], arguments["alpha"]
    _check(isinstance(minimalistic, bool), "minimalistic", f"must be True or False, got {minimalistic!r}")
    if arguments["weights"] == "imagenet" and minimalistic:
        _check(alpha == 1.0, "alpha", "ImageNet weights of minimalistic MobileNetV3 exist only for alpha=1.0")
    if minimalistic:
        arch = make_minimalistic(arch)
    return _keras_family_model(
        arch, "v3", variant, arguments,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v3", alpha=alpha, include_top=arguments["include_top"], size=size, model_type=model_type,
            minimalistic=minimalistic),
    )


_MINIMALISTIC = ("    minimalistic: True for the minimalistic form (no squeeze-excite, no\n"
                 "        hard-swish, 3x3 kernels only; ImageNet weights for alpha 1.0).\n"
                 "        Default False.\n")
_V3_NOTE = ("The same graph as keras.applications' MobileNetV3, whose weight files load into it.\n"
            "Its int8 TFLite files stay whole in XNNPACK (see the README).")


@_document(architectures.V3_SMALL, "MobileNetV3-Small: squeeze-excite and hard-swish, found by architecture "
           "search (Howard et al., 2019).\n\n" + _V3_NOTE, _alpha_argument("v3") + _MINIMALISTIC)
def V3Small(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights=None,
            input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
            dropout_rate=None, include_preprocessing=True, name=None):
    return _v3(architectures.V3_SMALL, "v3_small", "small", dict(locals()))


@_document(architectures.V3_LARGE, "MobileNetV3-Large: squeeze-excite and hard-swish, found by architecture "
           "search (Howard et al., 2019).\n\n" + _V3_NOTE, _alpha_argument("v3") + _MINIMALISTIC)
def V3Large(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights=None,
            input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
            dropout_rate=None, include_preprocessing=True, name=None):
    return _v3(architectures.V3_LARGE, "v3_large", "large", dict(locals()))


def _v4(arch, variant, arguments):
    weights = arguments["weights"]
    _check_common(arguments["include_top"], arguments["pooling"], arguments["classes"],
                  arguments["dropout_rate"], weights, parts_allowed=True)
    shape = _resolve_input_shape(arch, arguments["input_shape"], arguments["input_tensor"], weights)
    model = _build(arch, variant, arguments, shape)
    if weights is None:
        return model
    from keras_mobilenets import timm_weights

    if weights == "imagenet":
        weights = timm_weights.download_imagenet_checkpoint(variant)
    if timm_weights.is_safetensors(weights):
        timm_weights.load_timm_checkpoint(model, weights)
        return model
    weight_files.load_weights_file(model, weights)
    return model


_V4_NOTE = ("In timm's layout (symmetric padding, BatchNorm eps 1e-5{scale}), so timm's ImageNet\n"
            "checkpoints load into it.")


@_document(architectures.V4_CONV_SMALL, "MobileNetV4-Conv-Small: universal inverted bottlenecks "
           "(Qin et al., 2024).\n\n" + _V4_NOTE.format(scale=""))
def V4ConvSmall(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", dropout_rate=None,
                include_preprocessing=True, name=None):
    return _v4(architectures.V4_CONV_SMALL, "v4_conv_small", dict(locals()))


@_document(architectures.V4_CONV_MEDIUM, "MobileNetV4-Conv-Medium: universal inverted bottlenecks "
           "(Qin et al., 2024).\n\n" + _V4_NOTE.format(scale=""))
def V4ConvMedium(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                 classes=1000, classifier_activation="softmax", dropout_rate=None,
                 include_preprocessing=True, name=None):
    return _v4(architectures.V4_CONV_MEDIUM, "v4_conv_medium", dict(locals()))


@_document(architectures.V4_CONV_LARGE, "MobileNetV4-Conv-Large: universal inverted bottlenecks "
           "(Qin et al., 2024).\n\n" + _V4_NOTE.format(scale=""))
def V4ConvLarge(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", dropout_rate=None,
                include_preprocessing=True, name=None):
    return _v4(architectures.V4_CONV_LARGE, "v4_conv_large", dict(locals()))


@_document(architectures.V4_HYBRID_MEDIUM, "MobileNetV4-Hybrid-Medium: universal inverted bottlenecks and "
           "Mobile MQA attention (Qin et al., 2024).\n\n" + _V4_NOTE.format(scale=", layer scale"))
def V4HybridMedium(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                   classes=1000, classifier_activation="softmax", dropout_rate=None,
                   include_preprocessing=True, name=None):
    return _v4(architectures.V4_HYBRID_MEDIUM, "v4_hybrid_medium", dict(locals()))


@_document(architectures.V4_HYBRID_LARGE, "MobileNetV4-Hybrid-Large: universal inverted bottlenecks and "
           "Mobile MQA attention (Qin et al., 2024).\n\n" + _V4_NOTE.format(scale=", layer scale"))
def V4HybridLarge(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                  classes=1000, classifier_activation="softmax", dropout_rate=None,
                  include_preprocessing=True, name=None):
    return _v4(architectures.V4_HYBRID_LARGE, "v4_hybrid_large", dict(locals()))


BUILDERS = {
    "v1": V1,
    "v2": V2,
    "v3_small": V3Small,
    "v3_large": V3Large,
    "v4_conv_small": V4ConvSmall,
    "v4_conv_medium": V4ConvMedium,
    "v4_conv_large": V4ConvLarge,
    "v4_hybrid_medium": V4HybridMedium,
    "v4_hybrid_large": V4HybridLarge,
}
VARIANTS = tuple(BUILDERS)


def build(name, **kwargs):
    """Build a variant by name, e.g. `build("v3_small", classes=5)`.

    Args:
        name: one of `VARIANTS` ("v1", "v2", "v3_small", "v3_large",
            "v4_conv_small", "v4_conv_medium", "v4_conv_large",
            "v4_hybrid_medium", "v4_hybrid_large").
        **kwargs: the arguments of that variant's builder (see `V1` ... `V4HybridLarge`).

    Returns:
        The variant's `keras_mobilenets.MobileNet` model.

    Raises:
        ValueError: an unknown variant, an argument the variant's builder does
            not have, or a bad value (the message names it and what is allowed).
    """
    if name not in BUILDERS:
        raise ValueError(f"model: unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    arguments = inspect.signature(BUILDERS[name]).parameters
    for argument in kwargs:
        _check(argument in arguments, argument,
               f"not an argument of {name}; its arguments are {', '.join(arguments)}")
    return BUILDERS[name](**kwargs)


def architecture_of(model):
    """The variant and builder arguments a keras_mobilenets model was built with.

    `build(variant, **arguments)` builds the same layers again (randomly
    initialized). Works on a model a builder returned and on one loaded from
    the `.keras` file it was saved to.

    Args:
        model: a Keras model.

    Returns:
        (variant, arguments): e.g. ("v3_small", {"alpha": 0.5, "input_shape": [96, 96, 3], ...}).

    Raises:
        ValueError: the model was not built by a keras_mobilenets builder (or is
            a `keras.models.clone_model` copy of one, which drops the record).
    """
    from keras_mobilenets.layers import MobileNet

    if not isinstance(model, MobileNet) or model.variant not in BUILDERS:
        raise ValueError(
            f"model: {getattr(model, 'name', type(model).__name__)!r} was not built by a keras_mobilenets "
            "builder (kmn.V3Small(...), kmn.build(...)), so the architecture to rebuild is unknown; build it "
            "with one (a keras.models.clone_model copy loses the record: clone with "
            "kmn.MobileNet.from_config(model.get_config()))")
    return model.variant, dict(model.build_arguments)
