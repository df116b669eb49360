"""`keras-mobilenets train` / `evaluate`: an image folder end to end, SIGKILL and resume, errors."""
import csv
import json
import subprocess
import sys

import keras
import pytest
from PIL import Image

from keras_mobilenets.app.cli import main

TINY = ["--model", "v1", "--alpha", "0.25", "--image-size", "32", "--batch-size", "32",
        "--learning-rate", "0.2", "--no-flip"]


def write_folder(root):
    """Three classes told apart by color, with a corrupt file among them."""
    for name, color in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}.items():
        for i in range(24):
            path = root / name / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (24 + i, 20), tuple(max(0, c - 3 * i) for c in color)).save(path)
    (root / "green" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")


@pytest.mark.slow
def test_train_and_evaluate_an_image_folder(tmp_path, capsys):
    write_folder(tmp_path / "images")
    run = tmp_path / "runs" / "colors"
    assert main(["train", *TINY, "--dataset", str(tmp_path / "images"), "--epochs", "2", "--run", str(run),
                 "--validation-fraction", "0.2", "--test-fraction", "0.25"]) == 0
    assert "best validation top-1" in capsys.readouterr().out
    assert (run / "labels.txt").read_text().split() == ["blue", "green", "red"]

    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["count"] == 18 and scores["split"] == "test"
    assert scores["top5"] == 1.0 and 0 <= scores["top1"] <= 1  # three classes: top-3 holds them all
    assert (run / "confusion_test.png").stat().st_size > 1000

    assert main(["evaluate", str(run / "model.keras"), "--dataset", str(tmp_path / "images"),
                 "--split", "validation"]) == 0
    assert "validation (15 images): top-1" in capsys.readouterr().out


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    cases = [
        (["evaluate", "--run", str(tmp_path / "missing")], "missing does not exist"),
        (["evaluate"], "give either --run DIR or a MODEL.keras file"),
        (["train", *TINY, "--model", "v7", "--run", str(tmp_path / "a")], "unknown variant 'v7'"),
        (["train", *TINY, "--batch-size", "4096", "--run", str(tmp_path / "b")], "larger than the training split"),
        (["train", *TINY, "--dataset", "tfds:no_such_set", "--run", str(tmp_path / "c")], "no data set named"),
        (["train", *TINY, "--bn-momentum", "high", "--run", str(tmp_path / "d")], "bn_momentum: must be 'auto', 'keep' or a number"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def history_epochs(run):
    with open(run / "history.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_sigkill_mid_training_then_the_same_command_resumes(tmp_path, kill_after_first_epoch):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "keras_mobilenets.app.cli", "train", *TINY, "--epochs", "4", "--run", str(run)]
    state = run / "state.json"
    killed_at = kill_after_first_epoch(command, state)
    assert 1 <= killed_at < 4
    keras.saving.load_model(run / "model.keras")  # the kill left a whole best model

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from epoch {killed_at + 1} of 4 ({killed_at} done before)" in resumed.stdout
    assert f"Epoch {killed_at + 1}/4" in resumed.stdout and "Epoch 1/4" not in resumed.stdout
    assert history_epochs(run) == [1, 2, 3, 4]
    assert json.loads(state.read_text())["epoch"] == 4
    assert not list(run.rglob(".*.tmp-*"))  # whatever the kill left half-written is gone
