"""Post-training int8 of the V4 hybrids' attention and lone BatchNorm stays in one XNNPACK partition.

Small real Keras models with the two patterns, converted by the real converter:
keys with an offset (so calibration gives them a zero point far from 0), and a
BatchNorm that is not after a conv (so it converts to MUL + ADD) with a beta
far below one step of its output.
"""
import keras
import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from keras_mobilenets.tflite.converter import convert
from keras_mobilenets.tflite.latency import delegation_report, load_interpreter

SIZE = 8


def images(count=32):
    return np.random.default_rng(0).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")


def ops(path, name):
    model = flatbuffer_utils.read_model(str(path))
    subgraph = model.subgraphs[0]
    code = getattr(schema.BuiltinOperator, name)
    return model, subgraph, [op for op in subgraph.operators
                             if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                                    model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == code]


def agreement(path, model, x):
    interpreter = load_interpreter(str(path))
    source, = interpreter.get_input_details()
    target, = interpreter.get_output_details()
    found = []
    for image in x:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        found.append(interpreter.get_tensor(target["index"])[0])
    return float(np.mean(np.argmax(found, -1) == np.argmax(model.predict(x, verbose=0), -1)))


def attention_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    query = keras.layers.Reshape((SIZE * SIZE, 16))(keras.layers.Conv2D(16, 1)(x))
    keys = keras.layers.Reshape((SIZE * SIZE, 16))(
        keras.layers.Conv2D(16, 1, bias_initializer=keras.initializers.Constant(2.0))(x))  # all > 0
    scores = keras.layers.Softmax()(keras.layers.Dot(axes=2)([query, keys]))
    attended = keras.layers.Dot(axes=(2, 1))([scores, keys])
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling1D()(attended))
    return keras.Model(inputs, outputs)


@pytest.mark.slow
def test_attention_keys_are_symmetric_and_the_file_is_one_partition(tmp_path):
    model = attention_model()
    path = convert(model, tmp_path / "attention.tflite", quantization="int8", representative_data=images())
    tflite, subgraph, matmuls = ops(path, "BATCH_MATMUL")
    assert len(matmuls) == 2
    for op in matmuls:
        operand = subgraph.tensors[op.inputs[1]]
        assert operand.type == schema.TensorType.INT8 and list(operand.quantization.zeroPoint) == [0]
        # the reshape before it carries the same scale (RESHAPE needs equal scales in and out)
        reshape_input = next(subgraph.tensors[other.inputs[0]] for other in subgraph.operators
                             if op.inputs[1] in other.outputs)
        assert list(reshape_input.quantization.scale) == list(operand.quantization.scale)
    report = delegation_report(load_interpreter(str(path)))
    assert report["partitions"] == 1 and report["ops_outside_delegate"] == {}
    assert agreement(path, model, images(64)) >= 0.9


def batch_norm_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    norm = keras.layers.BatchNormalization()
    x = norm(x)  # after a ReLU: no conv to fold into, so MUL + ADD(beta)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    gamma, beta, mean, variance = norm.get_weights()
    norm.set_weights([np.full_like(gamma, 30.0), np.linspace(-1e-4, 1e-4, beta.size).astype("float32"),
                      mean, variance])
    return model


@pytest.mark.slow
def test_a_tiny_constant_of_an_add_is_rescaled_into_xnnpack(tmp_path):
    model = batch_norm_model()
    path = convert(model, tmp_path / "norm.tflite", quantization="int8", representative_data=images())
    tflite, subgraph, adds = ops(path, "ADD")
    constants = [subgraph.tensors[index] for op in adds for index in op.inputs
                 if subgraph.tensors[index].buffer and tflite.buffers[subgraph.tensors[index].buffer].data is not None]
    assert constants, "the BatchNorm did not convert to an ADD of a constant: the test lost its subject"
    for op in adds:
        output_scale = float(subgraph.tensors[op.outputs[0]].quantization.scale[0])
        for index in op.inputs:
            assert float(subgraph.tensors[index].quantization.scale[0]) >= output_scale * 2 ** -10
    report = delegation_report(load_interpreter(str(path)))
    assert report["partitions"] == 1 and report["ops_outside_delegate"] == {}
    assert agreement(path, model, images(64)) >= 0.9
