"""The public builders: `V1()` ... `V4HybridLarge()`, and `build(name, **kwargs)`.

Arguments follow keras.applications. Every argument is checked before anything
is built, and a bad one is a ValueError that names it and what is allowed.
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


def _keras_family_model(arch, family, *, input_shape, input_tensor, include_top, weights, pooling,
                        classes, classifier_activation, dropout_rate, include_preprocessing,
                        alpha, name, imagenet_file, depth_multiplier=1):
    _check_common(include_top, pooling, classes, dropout_rate, weights)
    _check_alpha(alpha, family, weights)
    shape = _resolve_input_shape(arch, input_shape, input_tensor, weights)
    model = build_model(
        arch, input_shape=shape, input_tensor=input_tensor, include_top=include_top,
        pooling=pooling, classes=classes, classifier_activation=classifier_activation,
        dropout_rate=dropout_rate, include_preprocessing=include_preprocessing, alpha=alpha,
        depth_multiplier=depth_multiplier, name=name,
    )
    return _finish(model, weights, lambda: imagenet_file(shape[0]))


def V1(input_shape=None, alpha=1.0, depth_multiplier=1, include_top=True, weights=None,
       input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
       dropout_rate=None, include_preprocessing=True, name=None):
    """MobileNetV1 (depthwise separable convs); alpha = width, input size = resolution multiplier."""
    _check(isinstance(depth_multiplier, numbers.Integral) and 1 <= depth_multiplier <= 8,
           "depth_multiplier", f"must be an integer from 1 to 8, got {depth_multiplier!r}")
    if weights == "imagenet":
        _check(depth_multiplier == 1, "depth_multiplier", "ImageNet weights exist only for 1")
    return _keras_family_model(
        architectures.V1, "v1", input_shape=input_shape, input_tensor=input_tensor,
        include_top=include_top, weights=weights, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate,
        include_preprocessing=include_preprocessing, alpha=alpha, name=name,
        depth_multiplier=depth_multiplier,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v1", alpha=alpha, include_top=include_top, size=size),
    )


def V2(input_shape=None, alpha=1.0, include_top=True, weights=None, input_tensor=None,
       pooling=None, classes=1000, classifier_activation="softmax", dropout_rate=None,
       include_preprocessing=True, name=None):
    """MobileNetV2 (inverted residuals, linear bottlenecks)."""
    return _keras_family_model(
        architectures.V2, "v2", input_shape=input_shape, input_tensor=input_tensor,
        include_top=include_top, weights=weights, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate,
        include_preprocessing=include_preprocessing, alpha=alpha, name=name,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v2", alpha=alpha, include_top=include_top, size=size),
    )


def _v3(arch, model_type, *, minimalistic, alpha, weights, **kwargs):
    _check(isinstance(minimalistic, bool), "minimalistic", f"must be True or False, got {minimalistic!r}")
    if weights == "imagenet" and minimalistic:
        _check(alpha == 1.0, "alpha", "ImageNet weights of minimalistic MobileNetV3 exist only for alpha=1.0")
    if minimalistic:
        arch = make_minimalistic(arch)
    include_top = kwargs["include_top"]
    return _keras_family_model(
        arch, "v3", alpha=alpha, weights=weights, **kwargs,
        imagenet_file=lambda size: weight_files.keras_applications_file(
            "v3", alpha=alpha, include_top=include_top, size=size, model_type=model_type,
            minimalistic=minimalistic),
    )


def V3Small(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights=None,
            input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
            dropout_rate=None, include_preprocessing=True, name=None):
    """MobileNetV3-Small (squeeze-excite, hard-swish; `minimalistic` drops both and 5x5 kernels)."""
    return _v3(architectures.V3_SMALL, "small", minimalistic=minimalistic, alpha=alpha,
               weights=weights, input_shape=input_shape, input_tensor=input_tensor,
               include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation, dropout_rate=dropout_rate,
               include_preprocessing=include_preprocessing, name=name)


def V3Large(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights=None,
            input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
            dropout_rate=None, include_preprocessing=True, name=None):
    """MobileNetV3-Large."""
    return _v3(architectures.V3_LARGE, "large", minimalistic=minimalistic, alpha=alpha,
               weights=weights, input_shape=input_shape, input_tensor=input_tensor,
               include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation, dropout_rate=dropout_rate,
               include_preprocessing=include_preprocessing, name=name)


def _v4(arch, variant, *, input_shape, input_tensor, include_top, weights, pooling, classes,
        classifier_activation, dropout_rate, include_preprocessing, name):
    _check_common(include_top, pooling, classes, dropout_rate, weights, parts_allowed=True)
    shape = _resolve_input_shape(arch, input_shape, input_tensor, weights)
    model = build_model(
        arch, input_shape=shape, input_tensor=input_tensor, include_top=include_top,
        pooling=pooling, classes=classes, classifier_activation=classifier_activation,
        dropout_rate=dropout_rate, include_preprocessing=include_preprocessing, name=name,
    )
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


def _v4_builder(arch, variant, paper_name):
    def builder(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", dropout_rate=None,
                include_preprocessing=True, name=None):
        return _v4(arch, variant, input_shape=input_shape, input_tensor=input_tensor,
                   include_top=include_top, weights=weights, pooling=pooling, classes=classes,
                   classifier_activation=classifier_activation, dropout_rate=dropout_rate,
                   include_preprocessing=include_preprocessing, name=name)

    builder.__name__ = builder.__qualname__ = paper_name
    builder.__doc__ = (
        f"MobileNetV4 {variant[3:].replace('_', '-')} (timm's layout: its ImageNet weights load).\n\n"
        "weights: None, 'imagenet', a timm .safetensors checkpoint (one file or a list of parts), "
        "or a Keras weights file."
    )
    return builder


V4ConvSmall = _v4_builder(architectures.V4_CONV_SMALL, "v4_conv_small", "V4ConvSmall")
V4ConvMedium = _v4_builder(architectures.V4_CONV_MEDIUM, "v4_conv_medium", "V4ConvMedium")
V4ConvLarge = _v4_builder(architectures.V4_CONV_LARGE, "v4_conv_large", "V4ConvLarge")
V4HybridMedium = _v4_builder(architectures.V4_HYBRID_MEDIUM, "v4_hybrid_medium", "V4HybridMedium")
V4HybridLarge = _v4_builder(architectures.V4_HYBRID_LARGE, "v4_hybrid_large", "V4HybridLarge")

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
    """Build a variant by name (one of VARIANTS), e.g. build("v3_small", classes=5)."""
    if name not in BUILDERS:
        raise ValueError(f"model: unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    arguments = inspect.signature(BUILDERS[name]).parameters
    for argument in kwargs:
        _check(argument in arguments, argument,
               f"not an argument of {name}; its arguments are {', '.join(arguments)}")
    return BUILDERS[name](**kwargs)
