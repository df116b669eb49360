"""Benchmark, evaluation and the CLI commands on real .tflite files."""
import argparse
import json

import keras
import numpy as np
import pytest

from keras_mobilenets.tflite import cli, metadata
from keras_mobilenets.tflite.latency import benchmark
from keras_mobilenets.tflite.converter import convert
from keras_mobilenets.tflite.accuracy import evaluate

SIZE = 32


def tiny_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def tflite(model, tmp_path_factory):
    return convert(model, tmp_path_factory.mktemp("runtime") / "model.tflite")


@pytest.fixture(scope="module")
def dataset(model):
    """(image, label) pairs whose labels are the Keras model's top-1 for the first 15, wrong for the rest."""
    images = np.random.default_rng(0).uniform(0, 255, (20, SIZE, SIZE, 3)).astype("float32")
    predicted = np.argmax(np.asarray(model(images)), axis=1)
    labels = np.where(np.arange(20) < 15, predicted, (predicted + 3) % 6)
    return list(zip(images, labels))


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.run(args)


def test_benchmark_reports_latency_size_and_partitions(tflite):
    result = benchmark(tflite, threads=1, runs=5, warmup=1)
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["p90_ms"]
    assert result["size_bytes"] == len(open(tflite, "rb").read())
    assert result["partitions"] == 1 and result["ops_outside_delegate"] == {}
    assert result["ops_in_delegate"]["CONV_2D"] == 1


def test_evaluate_top1_top5_and_agreement(tflite, model, dataset):
    result = evaluate(tflite, dataset, keras_model=model, batch_size=8, progress=False)
    assert result["count"] == 20
    assert result["top1"] == pytest.approx(15 / 20)
    assert result["top5"] >= result["top1"]
    assert result["agreement_top1"] == 1.0 and result["max_abs_difference"] < 1e-4


def test_evaluate_limit_and_wrong_size(tflite, dataset):
    assert evaluate(tflite, dataset, limit=4, progress=False)["count"] == 4
    small = [(image[:16, :16], label) for image, label in dataset]
    with pytest.raises(ValueError, match=r"images of shape \(16, 16, 3\) for a model that takes \(32, 32, 3\)"):
        evaluate(tflite, small, progress=False)
    with pytest.raises(ValueError, match="split is empty"):
        evaluate(tflite, [], progress=False)


def test_cli_benchmark_json(tflite, capsys):
    assert run_cli("benchmark", tflite, "--runs", "3", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert {"median_ms", "p90_ms", "size_bytes", "partitions"} <= result.keys()


@pytest.mark.parametrize("content", [b"", b"TFL3"])
def test_cli_benchmark_bad_file(tmp_path, content):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a TFLite model|truncated"):
        run_cli("benchmark", path)
    with pytest.raises(FileNotFoundError, match="no such .tflite file"):
        run_cli("benchmark", tmp_path / "absent.tflite")


def test_cli_convert_run_directory(model, tmp_path, capsys):
    model.save(tmp_path / "model.keras")
    (tmp_path / "config.json").write_text(json.dumps({"model": "tiny", "image_size": SIZE, "seed": 0}))
    (tmp_path / "labels.txt").write_text("\n".join("abcdef") + "\n")
    assert run_cli("convert", "--run", tmp_path, "--quantization", "dynamic") == 0
    output = tmp_path / "model_dynamic.tflite"
    assert capsys.readouterr().out.strip() == str(output)
    assert metadata.read(output)["name"] == "tiny"
    assert metadata.read_labels(output) == list("abcdef")


def test_cli_convert_refuses_int8_without_data(model, tmp_path):
    model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="--dataset SOURCE is needed"):
        run_cli("convert", tmp_path / "model.keras", "--quantization", "int8")
    with pytest.raises(ValueError, match="qat-int8 needs --run"):
        run_cli("convert", tmp_path / "model.keras", "--quantization", "qat-int8")


def test_cli_evaluate_tflite_on_the_bundled_digits(tflite, capsys):
    assert run_cli("evaluate-tflite", tflite, "--dataset", "digits", "--limit", "12", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 12 and result["dataset"] == "digits" and result["split"] == "test"
    assert 0 <= result["top1"] <= result["top5"] <= 1
