"""Keras model (Keras 3, or a tf_keras QAT model) -> .tflite file for LiteRT on Android.

Every mode converts the model with a batch of 1: mobile runtimes run one image
at a time, and a static batch keeps Reshape static (a dynamic batch adds
SHAPE/STRIDED_SLICE/PACK ops that XNNPACK does not take, splitting the graph).
"""
import contextlib
import os
import sys

import numpy as np

from keras_mobilenets.files import write_atomically
from keras_mobilenets.tflite import metadata as metadata_lib
from keras_mobilenets.tflite import xnnpack

MODES = ("float32", "float16", "dynamic", "int8", "qat-int8")
INPUT_TYPES = ("float32", "uint8", "int8")
OUTPUT_TYPES = ("float32", "uint8", "int8")
DEFAULT_SAMPLES = 200


def convert(model, output_path, *, quantization="float32", representative_data=None,
            num_samples=DEFAULT_SAMPLES, input_type="float32", output_type="float32", metadata=None):
    """Convert a Keras model to a .tflite file for LiteRT (batch 1), written atomically.

    int8 graphs stay whole in XNNPACK: the ops it runs in float only
    (hard-swish, softmax, GELU) run in float between a DEQUANTIZE and a
    QUANTIZE inside the one partition.

    Args:
        model: a Keras 3 model (any mode but "qat-int8"), or the QAT tf_keras
            model of `kmn.training.quantization_aware` (for "qat-int8"). Its
            input must be a fixed-size image (H, W, C).
        output_path: where to write the .tflite file (folders are made).
        quantization: "float32" (the default), "float16", "dynamic" (int8
            weights, float activations), "int8" (post-training full-integer,
            calibrated on `representative_data`) or "qat-int8" (full-integer
            with the ranges quantization-aware training learned).
        representative_data: "int8" only: images H x W x 3 in 0..255 at the
            model's input size, as a tf.data data set, an array or any
            iterable, of images or (image, label) pairs, batched or not.
            Default None.
        num_samples: how many representative images calibrate "int8". Default 200.
        input_type: "float32" (the default), "uint8" or "int8"; integer types
            need an integer mode.
        output_type: "float32" (the default), "uint8" or "int8", likewise.
        metadata: None (the default), or dict(name=, description=, version=,
            labels=[...]) for the Android TFLite metadata (see metadata.with_metadata).

    Returns:
        `output_path`, as a string.

    Raises:
        ValueError: an unknown mode or type, "qat-int8" for a model that is not
            a QAT tf_keras model, "int8" without representative images (or
            with images of another size), or a model without a fixed input size.
    """
    _check_options(quantization, input_type, output_type, num_samples)
    import tensorflow as tf

    namespace = _keras_namespace(model)
    if quantization == "qat-int8" and namespace.__name__ != "tf_keras":
        raise ValueError("quantization 'qat-int8' needs a quantization-aware tf_keras model "
                         "(keras_mobilenets.training.qat.load_qat_model); use 'int8' for a Keras 3 model")
    image_shape = _image_shape(model)
    samples = None
    if quantization == "int8":
        samples = representative_samples(representative_data, image_shape, num_samples)
    elif representative_data is not None:
        raise ValueError(f"representative_data is used by 'int8' only, not by {quantization!r}")

    # Keras 3's export prints its traced signature on stdout; keep stdout for results (--json).
    with contextlib.redirect_stdout(sys.stderr):
        data = _convert(tf, _single_batch_converter(tf, model, image_shape), quantization,
                        samples, input_type, output_type)
    if quantization in ("int8", "qat-int8"):
        # One XNNPACK partition: HARD_SWISH, SOFTMAX, GELU in float inside it; the hybrids' attention int8.
        data = xnnpack.constant_add_scales(xnnpack.symmetric_matmul_operands(xnnpack.keep_in_float(data)))
    metadata_lib.check_model_bytes(data, "the converter's output")
    if metadata is not None:
        data = metadata_lib.with_metadata(data, **metadata)
    output_path = os.fspath(output_path)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    write_atomically(output_path, data)
    return output_path


def representative_samples(data, image_shape, num_samples=DEFAULT_SAMPLES):
    """Up to `num_samples` float32 arrays of shape (1, H, W, C), checked against the model's input."""
    if data is None:
        raise ValueError("quantization 'int8' needs representative_data: images of the model's input size "
                         "(e.g. the training split)")
    samples = []
    for element in data:
        image = element[0] if isinstance(element, (tuple, list)) else element
        batch = np.asarray(image, dtype=np.float32)
        if batch.ndim == len(image_shape):
            batch = batch[None]
        if batch.shape[1:] != tuple(image_shape):
            raise ValueError(f"representative image of shape {batch.shape[1:]} for a model that takes "
                             f"{tuple(image_shape)}: resize the data to the model's input size")
        for image in batch:
            samples.append(image[None])
            if len(samples) == num_samples:
                return samples
    if not samples:
        raise ValueError("representative_data is empty: int8 calibration needs at least one image")
    return samples


def _convert(tf, converter, quantization, samples, input_type, output_type):
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    converter.inference_input_type = getattr(tf, input_type)
    converter.inference_output_type = getattr(tf, output_type)
    if quantization != "int8":
        return converter.convert()
    data = _convert_int8(tf, converter, samples, float_output=output_type == "float32")
    if (input_type, output_type) != ("float32", "float32"):
        # The quantization debugger ignores inference_input/output_type; set them as the converter would.
        from tensorflow.lite.python.util import modify_model_io_type

        data = modify_model_io_type(data, getattr(tf, input_type), getattr(tf, output_type))
    return data


def _convert_int8(tf, converter, samples, float_output):
    """Full-integer conversion that XNNPACK runs as one partition.

    XNNPACK takes HARD_SWISH, GELU (V4 hybrid) and SOFTMAX in float only: in int8
    they fall back to LiteRT's reference kernels and cut the graph (MobileNetV3
    from keras.applications splits into 20+ partitions and runs slower than
    float). Kept in float between a DEQUANTIZE and a QUANTIZE, they stay inside
    the one XNNPACK partition. The converter fuses x * relu6(x + 3) / 6 into
    HARD_SWISH whatever the Keras form, so this is chosen here, with TF's
    quantization debugger denylist (its documented way to keep ops in float).
    With integer output the final SOFTMAX comes out int8; keep_in_float then
    runs it in float too (tflite/xnnpack.py), as it does for QAT models.
    """
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    denylisted = ["HARD_SWISH", "GELU", "SOFTMAX"] if float_output else ["HARD_SWISH", "GELU"]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=denylisted))
    return debugger.get_nondebug_quantized_model()


def _single_batch_converter(tf, model, image_shape):
    """A converter for the model traced at batch 1 (a static graph: no dynamic-shape ops).

    Tracing a concrete function directly skips the SavedModel round trip that
    from_keras_model takes, which costs about a minute for a QAT model.
    """
    function = tf.function(_batch_function(model, image_shape)).get_concrete_function(
        tf.TensorSpec((1, *image_shape), tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.experimental_lower_to_saved_model = False
    return converter


def _batch_function(model, image_shape):
    """images -> model outputs, with a per-channel input Rescaling made cheap.

    A Rescaling with per-channel scale and offset (V4's ImageNet mean/std) is a
    MUL and an ADD whose (C,) constant broadcasts over H x W: XNNPACK then loops
    over runs of C = 3 values, which cost 0.7 ms in float32 and 1.4 ms in int8
    at 224x224 (a third of V4 conv small's int8 time). The same constants tiled
    to (W, C) broadcast over H only, in runs of W * C values, and cost ~0.05 ms.
    The arithmetic is the same, value for value; the rest of the model is
    called as it is, from the Rescaling's output on.
    """
    call = lambda images: model(images, training=False)
    import keras

    if not isinstance(model, keras.Model) or len(model.layers) < 2:
        return call
    rescaling = model.layers[1]
    per_channel = isinstance(rescaling, keras.layers.Rescaling) and 1 in (
        np.ndim(rescaling.scale), np.ndim(rescaling.offset))
    takes_input = [layer for layer in model.layers[1:]
                   if any(tensor is model.inputs[0] for tensor in keras.tree.flatten(layer.input))]
    if not per_channel or takes_input != [rescaling]:
        return call
    scale, offset = (np.broadcast_to(np.asarray(value, np.float32), image_shape[1:]).copy()
                     for value in (rescaling.scale, rescaling.offset))
    rest = keras.Model(rescaling.output, model.output)
    return lambda images: rest(images * scale + offset, training=False)


def _check_options(quantization, input_type, output_type, num_samples):
    if quantization not in MODES:
        raise ValueError(f"unknown quantization mode {quantization!r}; choose one of {', '.join(MODES)}")
    if input_type not in INPUT_TYPES:
        raise ValueError(f"unknown input_type {input_type!r}; choose one of {', '.join(INPUT_TYPES)}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"unknown output_type {output_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
    integer = quantization in ("int8", "qat-int8")
    if not integer and (input_type, output_type) != ("float32", "float32"):
        raise ValueError(f"input_type/output_type {input_type}/{output_type} need an integer model: "
                         f"quantization 'int8' or 'qat-int8', not {quantization!r}")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, not {num_samples!r}")


def _keras_namespace(model):
    """The keras module `model` belongs to: Keras 3 (`keras`) or Keras 2 (`tf_keras`, tfmot's)."""
    import keras

    if isinstance(model, keras.Model):
        return keras
    import tf_keras

    if isinstance(model, tf_keras.Model):
        return tf_keras
    raise ValueError(f"expected a Keras 3 or tf_keras model, got {type(model).__name__}")


def _image_shape(model):
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise ValueError(f"the model's input must be a fixed-size image (H, W, C), not {shape}: "
                         "build it with input_shape=(H, W, 3)")
    return tuple(int(size) for size in shape)
