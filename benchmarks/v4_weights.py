"""How exactly timm's MobileNetV4 checkpoints convert: logits against timm's, in Keras and TFLite.

Uses the fixtures in ../shared/fixtures/timm (seeded random-weight timm
checkpoints, float16 in parts, with an input and timm's logits for it).
Run: .venv/bin/python benchmarks/v4_weights.py
"""
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

import keras_mobilenets as kmn  # noqa: E402
from keras_mobilenets import timm_weights  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "timm"
BUILDERS = {"mobilenetv4_conv_small": kmn.V4ConvSmall, "mobilenetv4_hybrid_medium": kmn.V4HybridMedium}


def tflite_logits(model, images):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tflite")
        model.export(path, format="litert")
        with open(path, "rb") as file:
            interpreter = Interpreter(model_content=file.read())
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(result["index"])


def top5(logits):
    return np.argsort(-logits, axis=-1)[:, :5]


def main():
    print(f"{'checkpoint':<28}{'convert s':>10}{'keras max|d|':>14}{'tflite max|d|':>15}{'top-5 same':>12}")
    for name, builder in BUILDERS.items():
        parts = sorted(str(path) for path in FIXTURES.glob(f"{name}.part*.safetensors"))
        io = load_file(str(FIXTURES / f"{name}.io.safetensors"))
        images, expected = io["input_nchw"].transpose(0, 2, 3, 1), io["logits"]
        model = builder(input_shape=images.shape[1:], include_preprocessing=False, classifier_activation=None)
        start = time.perf_counter()
        timm_weights.load_timm_checkpoint(model, parts)  # read, map, transpose, check, assign
        seconds = time.perf_counter() - start
        keras_logits = model.predict(images, verbose=0)
        lite_logits = tflite_logits(model, images)
        same = all(np.array_equal(top5(logits), top5(expected)) for logits in (keras_logits, lite_logits))
        print(f"{name:<28}{seconds:>10.2f}{np.abs(keras_logits - expected).max():>14.2e}"
              f"{np.abs(lite_logits - expected).max():>15.2e}{str(same):>12}")


if __name__ == "__main__":
    main()
