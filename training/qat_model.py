"""A Keras 3 MobileNet -> the same network in tf_keras, with tfmot's 8-bit fake quantization.

tfmot only quantizes tf_keras models, and importing it sets TF_USE_LEGACY_KERAS=1
for the whole process; `import_tfmot` puts the variable back so that Keras 3
code that runs later in the same process is not affected.
"""
import os

import numpy as np

from keras_mobilenets import models
from keras_mobilenets.training.qat import BATCH_NORM_MODES

SUPPORTED = models.VARIANTS


def check_supported(model_name):
    if model_name not in models.VARIANTS:
        raise ValueError(f"model: unknown variant {model_name!r}; choose one of {', '.join(SUPPORTED)}")


def import_tfmot():
    """Import tensorflow_model_optimization without leaving TF_USE_LEGACY_KERAS changed."""
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    return tfmot


def build_tf_keras(model_name, **model_kwargs):
    """Build a variant in tf_keras from the same builder code (probabilities out, as the float model).

    tfmot leaves the classifier's softmax unquantized, so the int8 file ends in
    a float SOFTMAX inside the XNNPACK partition and gives probabilities, as
    its metadata says.
    """
    from keras_mobilenets.kit import use_kit
    from keras_mobilenets.training.tf_keras_kit import tf_keras_kit

    check_supported(model_name)
    with use_kit(tf_keras_kit()):
        return models.build(model_name, **{**model_kwargs, "classifier_activation": "softmax"})


def copy_weights(source, target):
    """Copy every weighted layer of `source` into the layer of the same name in `target`.

    A layer scale (V4 hybrids) has no layer in tf_keras (see tf_keras_kit): its
    per-channel scale is multiplied into the BatchNorm or bias-free conv before it.
    """
    by_name = {layer.name: layer for layer in target.layers}
    scales = {}
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "LayerScale":
            scales[layer.input._keras_history.operation.name] = weights[0]
            continue
        if layer.name not in by_name:
            raise ValueError(f"layer {layer.name!r} of the float model has no counterpart in tf_keras")
        if type(layer).__name__ == "BatchNormalization" and type(by_name[layer.name]).__name__ == "DepthwiseConv2D":
            weights = _batch_norm_as_depthwise(layer)  # a lone BN (see tf_keras_kit)
        shapes = [w.shape for w in by_name[layer.name].get_weights()]
        if shapes != [w.shape for w in weights]:
            raise ValueError(
                f"layer {layer.name!r}: weight shapes {[w.shape for w in weights]} do not match "
                f"the tf_keras layer's {shapes}; was the model built with other arguments?"
            )
        by_name[layer.name].set_weights(weights)
    for name, scale in scales.items():
        _fold_scale(by_name[name], scale)


def _batch_norm_as_depthwise(layer):
    """A BatchNormalization's inference function as a 1x1 depthwise conv's kernel and bias."""
    gamma, beta, mean, variance = layer.get_weights()
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return [scale.reshape(1, 1, -1, 1), beta - mean * scale]


def _fold_scale(layer, scale):
    """layer_scale(layer(x)) as layer(x) with scaled weights: BN's gamma and beta, or a conv's kernel."""
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        gamma, beta, *statistics = layer.get_weights()
        layer.set_weights([gamma * scale, beta * scale, *statistics])
    elif kind == "Conv2D":
        layer.set_weights([weight * scale for weight in layer.get_weights()])  # kernel (..., C) and bias (C,)
    else:
        raise ValueError(f"layer {layer.name!r}: a layer scale after a {kind} cannot be folded into it")


def quantize(tf_keras_model):
    """Wrap every layer with tfmot's 8-bit fake quantization (our configs where tfmot has none)."""
    import tf_keras

    from keras_mobilenets.training.quantize_configs import quantize_config_for

    tfmot = import_tfmot()
    qk = tfmot.quantization.keras

    def annotate(layer):
        config = quantize_config_for(layer)
        if config is None:
            return qk.quantize_annotate_layer(layer)
        return qk.quantize_annotate_layer(layer, quantize_config=config)

    annotated = tf_keras.models.clone_model(tf_keras_model, clone_function=annotate)
    with qk.quantize_scope(custom_objects()):
        return qk.quantize_apply(annotated)


def custom_objects():
    """Our layers and QuantizeConfigs, by name: what loading a saved QAT model needs."""
    from keras_mobilenets.training.quantize_configs import config_classes
    from keras_mobilenets.training.tf_keras_kit import custom_layers

    return {**custom_layers(), **config_classes()}


def qat_model_from(keras_model, model_name, *, batch_norm="frozen", calibration_data=None, **model_kwargs):
    """The QAT tf_keras model of a Keras 3 model built with `build(model_name, **model_kwargs)`.

    `calibration_data` (batches of (images, labels), e.g. the fine-tune's
    training data): start the activation ranges where the float model's
    activations are (see `calibrate_ranges`); every fine-tune passes it.

    `batch_norm="frozen"` (the usual QAT recipe, Jacob et al. 2018) runs every
    BatchNormalization in inference mode with the float model's moving
    statistics and keeps its scale and shift: the int8 graph folds exactly
    those. With "train", BN normalizes by batch statistics while fine-tuning,
    and a short fine-tune barely moves V3's 0.999-momentum moving statistics,
    so the folded model drifts from the one that was trained.
    """
    if batch_norm not in BATCH_NORM_MODES:
        raise ValueError(f"batch_norm: must be one of {', '.join(BATCH_NORM_MODES)}, got {batch_norm!r}")
    float_model = build_tf_keras(model_name, **model_kwargs)
    copy_weights(keras_model, float_model)
    if batch_norm == "frozen":
        for layer in float_model.layers:
            if type(layer).__name__ == "BatchNormalization":
                layer.trainable = False
    qat_model = quantize(float_model)
    if calibration_data is not None:
        calibrate_ranges(qat_model, float_model, calibration_data)
    return qat_model


# Activation range variables of tfmot's quantizers, by the name suffix tfmot gives them:
# each is the range of its wrapped layer's output (the QuantizeLayer's: the model input).
_ACTIVATION_RANGES = ("output", "post_activation", "quantize_layer")
# Narrower ranges than this (int8 steps under 4e-6) are not calibrated: see calibrate_ranges.
_NARROWEST_RANGE = 1e-3


def calibrate_ranges(qat_model, float_model, batches, *, steps=8):
    """Start every moving-average activation range at the float model's, averaged over `steps` batches.

    tfmot starts each range at [-6, 6] and moves it 0.1% a training step (EMA
    decay 0.999), so a short fine-tune clips every activation that reaches far
    past 6 for its whole length. The V4 hybrids' layer scales (folded into the
    BatchNorm before them) grow to ~70 in training: measured on digits
    (v4_hybrid_medium, 64 px, 10 epochs), the QAT model started at 9.5% top-1,
    the PTQ file of the same model was at 94%, and 3 epochs of QAT ended at
    10.9%. The per-batch ranges averaged here are where the moving average
    heads, and what post-training int8 calibrates to; symmetric quantizers get
    the symmetric range, as tfmot computes it. A tensor that is all but zero on
    these batches (a range under `_NARROWEST_RANGE`: a dead branch, or the
    vanishing activations of a random-weight network) keeps tfmot's start:
    measured on a random-weight V3-Small at 224 px, zero-width ranges became
    scale-0 ADDs that cut the graph into 9 partitions, and ranges of 1e-6 made
    LiteRT's XNNPACK abort while loading the file.
    """
    import tf_keras

    wrapped = []  # (variables, layer name in float_model or None for the input, symmetric)
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", None)
        ranges = {}
        for variable in layer.non_trainable_weights:
            name = variable.name.split("/")[-1].split(":")[0]
            for kind in _ACTIVATION_RANGES:
                if name.startswith(kind) and name.rsplit("_", 1)[-1] in ("min", "max"):
                    ranges[name.rsplit("_", 1)[-1]] = variable
        if not ranges:
            continue
        config = getattr(layer, "quantize_config", None)
        quantizer = getattr(config, "activation_quantizer", None)
        wrapped.append((ranges, None if inner is None else inner.name, bool(getattr(quantizer, "symmetric", False))))
    outputs = [float_model.inputs[0] if name is None else float_model.get_layer(name).output
               for _, name, _ in wrapped]
    probe = tf_keras.Model(float_model.inputs, outputs)
    sums = np.zeros((len(wrapped), 2))
    count = 0
    for images, *_ in batches.take(steps):
        values = probe(images, training=False)
        for index, ((_, _, symmetric), value) in enumerate(zip(wrapped, values)):
            low, high = min(float(np.min(value)), 0.0), max(float(np.max(value)), 0.0)
            if symmetric:  # narrow range: [-m, m]
                low, high = min(low, -high), max(high, -low)
            sums[index] += (low, high)
        count += 1
    if count == 0:
        raise ValueError("calibration_data: no batches to calibrate the activation ranges on")
    for (ranges, _, _), (low, high) in zip(wrapped, sums / count):
        if high - low < _NARROWEST_RANGE:  # all but zero on these batches: keep tfmot's start
            continue
        ranges["min"].assign(np.full(ranges["min"].shape, low, dtype="float32"))
        ranges["max"].assign(np.full(ranges["max"].shape, high, dtype="float32"))
