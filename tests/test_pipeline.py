"""The main job end to end on a tiny setting: every artifact, and figures that agree
with `evaluate-tflite` and `benchmark` run on their own."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import TINY_PIPELINE
from keras_mobilenets.tflite import metadata

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def keras_mobilenets(*args, returncode=0):
    result = subprocess.run([sys.executable, "-m", "keras_mobilenets.app.cli", *args],
                            env=ENV, capture_output=True, text=True)
    assert result.returncode == returncode, result.stderr[-4000:]
    return result.stdout if returncode == 0 else result.stderr


@pytest.mark.slow
def test_pipeline_end_to_end_and_resume(tiny_pipeline, tmp_path):
    made, out = tiny_pipeline
    run = tmp_path / "run"
    shutil.copytree(made, run)  # this test resumes and redoes it
    tiny = [*TINY_PIPELINE, "--run", str(run)]
    assert "report:" in out

    figures = ("training_curves_v3_small.png", "accuracy_vs_latency.png", "accuracy_vs_size.png",
               "confusion_v3_small.png", "mistakes_v3_small.png")
    for name in ("config.json", "model.keras", "qat_model.h5", "history.csv", "qat_history.csv",
                 "report.html", "report.md", "confusion_test.png", *figures):
        assert (run / name).is_file(), name
    labels = (run / "labels.txt").read_text().split()
    assert labels == [str(digit) for digit in range(10)]
    for tflite in ("model_float32.tflite", "model_int8.tflite", "model_qat-int8.tflite"):
        assert metadata.read_labels(run / tflite) == labels
        assert metadata.read(run / tflite)["name"] == "v3_small"

    for image in figures:
        assert f"({image})" in (run / "report.md").read_text()

    state = json.loads((run / "pipeline.json").read_text())
    for quantization, source in (("float32", "model"), ("int8", "model"), ("qat-int8", "qat_model")):
        stage = f"tflite_{quantization}"
        path = str(run / f"model_{quantization}.tflite")
        evaluated = json.loads(keras_mobilenets("evaluate-tflite", path, "--json"))
        assert evaluated["top1"] == pytest.approx(state[stage]["top1"])
        assert evaluated["count"] == state[stage]["count"]
        assert evaluated["compared_with"] == state[stage]["compared_with"] == source
        assert evaluated["agreement_top1"] == pytest.approx(state[stage]["agreement_top1"])
        assert f"{evaluated['top1']:.2%}" in (run / "report.md").read_text()
        measured = json.loads(keras_mobilenets("benchmark", path, "--runs", "5", "--json"))
        assert measured["size_bytes"] == state[stage]["size_bytes"]
        assert measured["partitions"] == state[stage]["partitions"] == 1

    assert "ship model_" in (run / "report.md").read_text()
    again = keras_mobilenets("pipeline", *tiny)  # the same command resumes: nothing is redone
    assert again.count("done before:") == 9
    (run / "model_int8.predictions.json").unlink()  # as in a run made before the report kept them
    again = keras_mobilenets("pipeline", *tiny)
    assert again.count("done before:") == 8 and "] evaluate and benchmark the int8 (post-training)" in again
    assert (run / "model_int8.predictions.json").is_file()

    report = (run / "report.md").read_text()
    longer = [*tiny[:tiny.index("--epochs")], "--epochs", "2", *tiny[tiny.index("--epochs") + 2:]]
    refused = keras_mobilenets("pipeline", *longer, returncode=2)
    assert "epochs: 1 -> 2" in refused and "--redo" in refused
    assert (run / "report.md").read_text() == report  # untouched
    assert "1 float epochs" in report

    redone = keras_mobilenets("pipeline", *longer, "--redo")
    assert "redoing from the train stage" in redone
    assert (run / "history.csv").read_text().strip().splitlines()[-1].startswith("2,")
    assert "2 float epochs" in (run / "report.md").read_text()
