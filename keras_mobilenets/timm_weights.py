"""timm's MobileNetV4 checkpoints (safetensors) converted into our V4 models, all or nothing.

timm's ImageNet weights are the MobileNetV4 weights that exist. Our V4 tables
follow timm block for block, so its keys map onto our layer names: timm's
blocks.S.B (stage S, block B) are our block1, block2, ... in the same order.
Tensors are read with safetensors.numpy: no torch, and never a pickle.
"""
import os
import re

import numpy as np

from keras_mobilenets import weights as weight_files

HF = "https://huggingface.co/timm/{tag}/resolve/main/model.safetensors"

# timm's ImageNet-1k checkpoint for each variant at our default input size.
# All use timm's default ImageNet mean/std, which our preprocessing applies.
# Neither timm's source nor the Hugging Face files we can read offline state
# their sha256, so the download is not hash-checked.
IMAGENET_TAGS = {
    "v4_conv_small": "mobilenetv4_conv_small.e2400_r224_in1k",
    "v4_conv_medium": "mobilenetv4_conv_medium.e500_r256_in1k",
    "v4_conv_large": "mobilenetv4_conv_large.e600_r384_in1k",
    "v4_hybrid_medium": "mobilenetv4_hybrid_medium.ix_e550_r256_in1k",
    "v4_hybrid_large": "mobilenetv4_hybrid_large.ix_e600_r384_in1k",
}

# Our layer name (after "blockN_") -> timm's module path inside blocks.S.B.
_BLOCK_LAYERS = {
    "conv": "conv",  # ConvBnAct
    "bn": "bn1",
    "start_dwconv": "dw_start.conv",  # UIB
    "start_dwbn": "dw_start.bn",
    "expand_conv": "pw_exp.conv",
    "expand_bn": "pw_exp.bn",
    "middle_dwconv": "dw_mid.conv",
    "middle_dwbn": "dw_mid.bn",
    "project_conv": "pw_proj.conv",
    "project_bn": "pw_proj.bn",
    "layer_scale": "layer_scale",  # UIB and Mobile MQA of the hybrids
    "norm": "norm",  # Mobile MQA
    "query": "attn.query.proj",
    "key_down_dwconv": "attn.key.down_conv",
    "key_down_dwbn": "attn.key.norm",
    "key": "attn.key.proj",
    "value_down_dwconv": "attn.value.down_conv",
    "value_down_dwbn": "attn.value.norm",
    "value": "attn.value.proj",
    "output": "attn.output.proj",
}
# FusedIB (timm's EdgeResidual) uses other names for its expand/project pair.
_FUSED_LAYERS = {
    "expand_conv": "conv_exp",
    "expand_bn": "bn1",
    "project_conv": "conv_pwl",
    "project_bn": "bn2",
}
_OUTER_LAYERS = {
    "stem_conv": "conv_stem",
    "stem_bn": "bn1",
    "head_hidden_conv": "conv_head",
    "head_hidden_bn": "norm_head",
    "head_logits": "classifier",
}
_HEAD_MODULES = ("conv_head", "norm_head", "classifier")
_BN = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
       ("moving_variance", "running_var"))


def download_imagenet_checkpoint(variant):
    """Fetch timm's ImageNet checkpoint for `variant` into Keras's cache; returns its path."""
    import keras

    tag = IMAGENET_TAGS[variant]
    return keras.utils.get_file(f"{tag}.safetensors", HF.format(tag=tag), cache_subdir="models")


def is_safetensors(weights):
    """A .safetensors path, or a list/tuple of them (the parts of one checkpoint)."""
    if isinstance(weights, (list, tuple)):
        return len(weights) > 0 and all(map(is_safetensors, weights))
    return isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(".safetensors")


def read_checkpoint(paths):
    """All tensors of a checkpoint given as one file or its parts, as float32 numpy arrays."""
    from safetensors.numpy import load_file

    paths = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else list(map(os.fspath, paths))
    weight_files.refuse_pickles(paths, instead="timm's .safetensors")
    for path in paths:
        if not path.endswith(".safetensors"):
            raise ValueError(f"weights={path!r}: a timm checkpoint must be .safetensors file(s)")
        if not os.path.isfile(path):
            raise ValueError(f"weights={path!r}: no such file")
    tensors = {}
    for path in paths:
        for key, value in load_file(path).items():
            if key in tensors:
                raise ValueError(f"weights: key {key!r} appears in more than one part ({path!r})")
            tensors[key] = value.astype(np.float32)
    return tensors


def _timm_blocks(keys):
    """timm's block prefixes "blocks.S.B." in network order."""
    pattern = re.compile(r"blocks\.(\d+)\.(\d+)\.")
    ids = {tuple(map(int, match.groups())) for match in map(pattern.match, keys) if match}
    return [f"blocks.{stage}.{block}." for stage, block in sorted(ids)]


def _modules(model, block_prefixes):
    """Our weighted layers, each with timm's module path (block3_expand_conv -> blocks.1.0.pw_exp.conv)."""
    ours = {int(m.group(1)) for m in (re.match(r"block(\d+)_", layer.name) for layer in model.layers) if m}
    if len(ours) != len(block_prefixes):
        raise ValueError(
            f"the checkpoint has {len(block_prefixes)} blocks (blocks.S.B), {model.name} has "
            f"{len(ours)}: it is a checkpoint of another architecture"
        )
    # FusedIB (timm's EdgeResidual) is the block whose expansion is a full kxk conv, not 1x1.
    fused = {
        layer.name[: -len("_expand_conv")]
        for layer in model.layers
        if layer.name.endswith("_expand_conv") and tuple(layer.kernel_size) != (1, 1)
    }
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name in _OUTER_LAYERS:
            yield layer, _OUTER_LAYERS[layer.name]
            continue
        match = re.fullmatch(r"(block(\d+))_(.+)", layer.name)
        if match is None or match.group(3) not in _BLOCK_LAYERS:
            raise ValueError(f"layer {layer.name!r} of {model.name} has no counterpart in timm's MobileNetV4")
        block, index, part = match.group(1), int(match.group(2)), match.group(3)
        names = _FUSED_LAYERS if block in fused and part in _FUSED_LAYERS else _BLOCK_LAYERS
        yield layer, block_prefixes[index - 1] + names[part]


def _targets(layer, module):
    """(variable, timm key, conversion from PyTorch's layout to Keras's) for one layer."""
    import keras

    from keras_mobilenets.layers import LayerScale

    if isinstance(layer, keras.layers.BatchNormalization):
        return [(getattr(layer, ours), f"{module}.{theirs}", _same) for ours, theirs in _BN]
    if isinstance(layer, LayerScale):
        return [(layer.gamma, f"{module}.gamma", _same)]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = (layer.kernel, f"{module}.weight", _depthwise_kernel)
    elif isinstance(layer, keras.layers.Conv2D):
        kernel = (layer.kernel, f"{module}.weight", _conv_kernel)
    elif isinstance(layer, keras.layers.Dense):
        kernel = (layer.kernel, f"{module}.weight", np.transpose)
    else:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no timm conversion")
    bias = [(layer.bias, f"{module}.bias", _same)] if layer.bias is not None else []
    return [kernel] + bias


def _same(tensor):
    return tensor


def _conv_kernel(tensor):
    """PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return tensor.transpose(2, 3, 1, 0)


def _depthwise_kernel(tensor):
    """PyTorch (channels, 1, kh, kw) -> Keras (kh, kw, channels, 1)."""
    return tensor.transpose(2, 3, 0, 1)


def _listing(title, items, limit=20):
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}):\n  " + "\n  ".join(items[:limit]) + more


def load_timm_checkpoint(model, paths):
    """Load timm's MobileNetV4 checkpoint (one .safetensors file or its parts) into `model`.

    Every key must be used and every weight set, or nothing is: all values are
    converted and checked before the first one is assigned. A model without its
    top (include_top=False) skips timm's head (conv_head, norm_head, classifier).
    """
    tensors = read_checkpoint(paths)
    try:
        modules = list(_modules(model, _timm_blocks(tensors)))
        targets = [target for layer, module in modules for target in _targets(layer, module)]
    except ValueError as error:
        raise ValueError(f"weights={paths!r} does not fit {model.name}: {error}") from error
    has_head = any(layer.name == "head_logits" for layer in model.layers)
    values, missing, mismatched = [], [], {}
    for variable, key, convert in targets:
        if key not in tensors:
            missing.append(f"{key} (for {variable.path})")
            continue
        value = convert(tensors[key])
        if value.shape != tuple(variable.shape):
            mismatched[key] = (f"{key} {tensors[key].shape} -> {value.shape}, "
                               f"{variable.path} is {tuple(variable.shape)}")
            continue
        values.append((variable, value))
    used = {key for _, key, _ in targets}
    unexpected = sorted(
        key for key in tensors
        if key not in used
        and not key.endswith(".num_batches_tracked")
        and (has_head or key.split(".")[0] not in _HEAD_MODULES)
    )
    problems = [
        _listing(title, items)
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shapes that do not fit", list(mismatched.values())))
        if items
    ]
    classifier = [key for key in mismatched if key.startswith("classifier.")]
    if classifier:
        problems.append(
            f"the checkpoint classifies {tensors[classifier[0]].shape[0]} classes: build with that many "
            "classes, or with include_top=False to load the features without timm's head"
        )
    if problems:
        raise ValueError(
            f"weights={paths!r} does not fit {model.name}; the model was left unchanged.\n"
            + "\n".join(problems)
        )
    for variable, value in values:
        variable.assign(value)
