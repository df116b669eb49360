"""One owner for a run: every stage scores the same test images, int8 calibrates on the
training split, a file is compared with the model it came from; --help starts no TensorFlow."""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from keras_mobilenets.app.cli import build_parser, main

TINY = ["--model", "v1", "--alpha", "0.25", "--image-size", "32", "--batch-size", "64", "--epochs", "1",
        "--no-flip"]


@pytest.mark.slow
@pytest.mark.parametrize("fractions", [["--test-fraction", "0.3"], ["--validation-fraction", "0.2", "--seed", "3"]])
def test_every_stage_scores_the_runs_own_test_split(fractions, tmp_path, capsys, monkeypatch):
    from keras_mobilenets.tflite import runs as tflite_runs
    from keras_mobilenets.training import data, runs

    run = tmp_path / "run"
    assert main(["train", *TINY, *fractions, "--run", str(run)]) == 0
    splits = runs.Run(run).splits()
    expected = data.count(splits.test)
    config = json.loads((run / "config.json").read_text())
    assert abs(expected - 1797 * config["test_fraction"]) <= 10  # stratified: rounded per class
    capsys.readouterr()

    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == expected

    calibration = {}
    real_convert = tflite_runs.convert

    def spy(model, output, **options):  # the real conversion, with its calibration data noted
        calibration["data"] = options["representative_data"]
        return real_convert(model, output, **options)

    monkeypatch.setattr(tflite_runs, "convert", spy)
    assert main(["convert", "--run", str(run), "--quantization", "int8", "--samples", "8"]) == 0
    train_images = np.stack([image for image, _ in splits.train.take(8)])
    used = np.stack([image for image, _ in calibration["data"].take(8)])
    np.testing.assert_array_equal(used, train_images)  # the training split, image for image
    capsys.readouterr()

    assert main(["evaluate-tflite", str(run / "model_int8.tflite"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["count"] == expected and scored["compared_with"] == "model"
    assert scored["agreement_top1"] > 0.5  # int8 against the float model it came from


def test_a_run_refuses_a_file_it_did_not_convert(tmp_path):
    from keras_mobilenets.tflite.runs import evaluate_run
    from keras_mobilenets.training import runs

    (tmp_path / "config.json").write_text(json.dumps({"dataset": "digits"}))
    (tmp_path / "model_float32.tflite").write_bytes(b"")
    with pytest.raises(ValueError, match="not converted from this run"):
        evaluate_run(runs.Run(tmp_path), tmp_path / "model_float32.tflite")


@pytest.mark.parametrize("command", [[], ["train"], ["pipeline"], ["convert"]])
def test_help_starts_no_tensorflow_and_prints_no_log_lines(command):
    script = ("import sys\nfrom keras_mobilenets.app.cli import main\n"
              "try:\n    main([*sys.argv[1:], '--help'])\nexcept SystemExit:\n    pass\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
              "print('HEAVY', heavy)\n")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout[-500:]
    assert result.stderr == ""  # no TensorFlow start-up lines
    assert "usage: keras-mobilenets" in result.stdout
    print(f"{' '.join(command) or '(top)'} --help: {seconds:.2f} s")


def test_every_option_has_help_with_its_default():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = []
    for name, command in commands.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = action.help or ""
            if not text or (action.option_strings and action.default not in (None, False) and "default" not in text):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.slow
def test_webp_and_gif_images_train_and_evaluate_and_unreadable_files_are_reported(tmp_path, capsys, caplog):
    root = tmp_path / "images"
    for name, color in {"red": (220, 30, 30), "blue": (20, 40, 230)}.items():
        (root / name).mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (20 + i, 18), tuple(max(0, c - 4 * i) for c in color)).save(
                root / name / f"{i}.{('webp', 'gif', 'png')[i % 3]}")
    (root / "red" / "notes.txt").write_text("not an image")
    (root / "blue" / "broken.webp").write_bytes(b"RIFF0000WEBPVP8 cut")
    from keras_mobilenets.training import data

    with caplog.at_level("WARNING"):
        splits = data.load(str(root), image_size=32, validation_fraction=0.25, test_fraction=0.25)
    assert sorted(os.path.basename(path) for path in splits.skipped) == ["broken.webp", "notes.txt"]
    assert "left out 2 file(s)" in caplog.text
    assert data.count(splits.train) + data.count(splits.validation) + data.count(splits.test) == 24

    run = tmp_path / "run"
    assert main(["train", *TINY, "--dataset", str(root), "--run", str(run), "--batch-size", "8",
                 "--validation-fraction", "0.25", "--test-fraction", "0.25"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == data.count(splits.test) == 6
