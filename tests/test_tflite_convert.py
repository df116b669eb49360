"""Conversion to .tflite: every mode runs in LiteRT, int8 stays whole under XNNPACK, bad input is refused."""
import os

import numpy as np
import pytest

import keras_mobilenets as kmn
from keras_mobilenets.tflite import metadata
from keras_mobilenets.tflite.latency import delegation_report, load_interpreter
from keras_mobilenets.tflite.converter import convert

SIZE = 64
CLASSES = 3


@pytest.fixture(scope="module")
def model():
    return kmn.build("v3_small", input_shape=(SIZE, SIZE, 3), classes=CLASSES)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")


def run(path, image):
    interpreter = load_interpreter(path)
    source, = interpreter.get_input_details()
    target, = interpreter.get_output_details()
    interpreter.set_tensor(source["index"], image[None].astype(source["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(target["index"])[0], interpreter


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic"])
def test_float_modes_match_keras(model, images, tmp_path, mode):
    path = convert(model, tmp_path / f"{mode}.tflite", quantization=mode)
    output, interpreter = run(path, images[0])
    expected = np.asarray(model(images[:1]))[0]
    np.testing.assert_allclose(output, expected, atol={"float32": 1e-5, "float16": 1e-2, "dynamic": 5e-2}[mode])
    if mode != "dynamic":  # dynamic-range DEPTHWISE_CONV_2D (int8 weights, float data) runs outside XNNPACK
        assert delegation_report(interpreter)["ops_outside_delegate"] == {}
    assert os.listdir(tmp_path) == [f"{mode}.tflite"]  # the temporary file was renamed, not left behind


@pytest.mark.slow
def test_int8_is_one_xnnpack_partition_and_close_to_keras(model, images, tmp_path):
    labels = ["cat", "dog", "bird"]
    path = convert(model, tmp_path / "int8.tflite", quantization="int8", representative_data=images,
                   metadata={"name": "v3_small", "description": "test", "version": "1", "labels": labels})
    output, interpreter = run(path, images[0])
    report = delegation_report(interpreter)
    assert report["partitions"] == 1 and report["ops_outside_delegate"] == {}, report
    hard_swish = [op for op in interpreter._get_ops_details() if op["op_name"] == "HARD_SWISH"]
    assert hard_swish and all(op["operand_types"] == [np.float32] for op in hard_swish)  # int8 would fall outside
    np.testing.assert_allclose(output, np.asarray(model(images[:1]))[0], atol=0.05)
    assert metadata.read_labels(path) == labels


@pytest.mark.slow
def test_int8_uint8_io_is_quantized_both_ends(model, images, tmp_path):
    path = convert(model, tmp_path / "u8.tflite", quantization="int8", representative_data=iter(images),
                   num_samples=4, input_type="uint8", output_type="uint8")
    output, interpreter = run(path, images[0])
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert source["dtype"] == np.uint8 and target["dtype"] == np.uint8
    scale, zero_point = target["quantization"]
    probabilities = (output.astype("float32") - zero_point) * scale
    np.testing.assert_allclose(probabilities, np.asarray(model(images[:1]))[0], atol=0.05)


@pytest.mark.slow
def test_qat_tf_keras_and_keras3_convert_in_one_process(model, tmp_path):
    import tensorflow_model_optimization as tfmot  # sets TF_USE_LEGACY_KERAS=1 for the process
    import tf_keras

    inputs = tf_keras.Input((SIZE, SIZE, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(CLASSES, activation="softmax")(x)
    qat = tfmot.quantization.keras.quantize_model(tf_keras.Model(inputs, outputs))
    qat_path = convert(qat, tmp_path / "qat.tflite", quantization="qat-int8", input_type="uint8")
    _, interpreter = run(qat_path, np.zeros((SIZE, SIZE, 3)))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    keras3_path = convert(model, tmp_path / "after.tflite")
    output, _ = run(keras3_path, np.zeros((SIZE, SIZE, 3), "float32"))
    assert output.shape == (CLASSES,)


def test_unknown_mode_names_the_modes(model, tmp_path):
    with pytest.raises(ValueError, match="unknown quantization mode 'int4'.*float32, float16, dynamic, int8"):
        convert(model, tmp_path / "m.tflite", quantization="int4")


def test_empty_representative_data(model, tmp_path):
    with pytest.raises(ValueError, match="representative_data is empty"):
        convert(model, tmp_path / "m.tflite", quantization="int8", representative_data=[])
    with pytest.raises(ValueError, match="needs representative_data"):
        convert(model, tmp_path / "m.tflite", quantization="int8")


def test_wrong_shape_representative_data(model, tmp_path):
    wrong = np.zeros((2, 32, 32, 3), "float32")
    with pytest.raises(ValueError, match=r"shape \(32, 32, 3\) for a model that takes \(64, 64, 3\)"):
        convert(model, tmp_path / "m.tflite", quantization="int8", representative_data=wrong)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("options, message", [
    ({"quantization": "float32", "input_type": "uint8"}, "need an integer model"),
    ({"quantization": "int8", "output_type": "float64"}, "unknown output_type"),
    ({"quantization": "int8", "num_samples": 0}, "num_samples must be a positive integer"),
    ({"quantization": "qat-int8"}, "needs a quantization-aware tf_keras model"),
    ({"quantization": "float32", "representative_data": [np.zeros((SIZE, SIZE, 3))]}, "used by 'int8' only"),
])
def test_bad_options(model, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        convert(model, tmp_path / "m.tflite", **options)


def test_not_a_model(tmp_path):
    with pytest.raises(ValueError, match="expected a Keras 3 or tf_keras model, got str"):
        convert("model.keras", tmp_path / "m.tflite")
