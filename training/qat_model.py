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


def qat_model_from(keras_model, model_name, *, batch_norm="frozen", **model_kwargs):
    """The QAT tf_keras model of a Keras 3 model built with `build(model_name, **model_kwargs)`.

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
    return quantize(float_model)
