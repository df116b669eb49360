"""fit from Python: tf.data sets, callbacks, in memory, resumed after SIGKILL, extended; the
BatchNorm fix for plain model.fit; TrainConfig as the one list of settings."""
import argparse
import csv
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mobilenets as kmn
from keras_mobilenets.training import config, data, runs
from keras_mobilenets.training.accuracy import evaluate
from keras_mobilenets.training.batch_norm import settle_batch_norm
from keras_mobilenets.training.loop import fit

TINY = dict(alpha=0.35, minimalistic=True, image_size=32, batch_size=64, learning_rate=0.2, flip=False, verbose=0)


def digits_sets():
    """scikit-learn's digits as a user would hand them over: tf.data of (8x8x3 uint8, int64 label)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.repeat((digits.images * 255 / 16).astype(np.uint8)[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    train = tf.data.Dataset.from_tensor_slices((images[:1500], labels[:1500]))
    validation = tf.data.Dataset.from_tensor_slices((images[1500:], labels[1500:]))
    return train, validation


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, sorted(logs)))


def history_rows(run_dir):
    with open(run_dir / runs.HISTORY) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_tf_data_with_a_callback_then_the_finished_run_extends_to_more_epochs(tmp_path, capsys):
    train, validation = digits_sets()
    run_dir = tmp_path / "run"
    first = EpochRecorder()
    result = fit("v3_small", train.batch(100), validation, epochs=1, callbacks=[first], run_dir=run_dir, **TINY)
    assert [epoch for epoch, _ in first.epochs] == [0]  # once per epoch
    assert "val_accuracy" in first.epochs[0][1]
    saved = json.loads((run_dir / runs.CONFIG).read_text())
    assert saved["dataset"] is None and saved["class_names"] == [str(label) for label in range(10)]
    assert saved["model_kwargs"]["classes"] == 10 and result.model.outputs[0].shape[-1] == 10
    with pytest.raises(ValueError, match="trained on a tf.data.Dataset given in Python"):
        runs.Run(run_dir).splits()
    with pytest.raises(ValueError, match="trained on a tf.data.Dataset given in Python"):
        evaluate(run_dir)  # a stage that needs the run's data says it cannot rebuild it
    assert runs.Run(run_dir).settings() == config.TrainConfig(**{**TINY, "epochs": 1}).replace(
        weight_decay=4e-5, fine_tune_learning_rate=0.02)  # config.json holds the settings, defaults worked out

    second = EpochRecorder()
    extended = fit("v3_small", train, validation, epochs=2, callbacks=[second], run_dir=run_dir,
                   **{**TINY, "verbose": 2})
    assert "extending the run from 1 to 2 epochs" in capsys.readouterr().out
    assert [epoch for epoch, _ in second.epochs] == [1]  # only the added epoch trains
    rows = history_rows(run_dir)
    assert [int(row["epoch"]) for row in rows] == [1, 2] and float(rows[1]["val_accuracy"]) >= 0
    assert len(extended.history) == 2 and json.loads((run_dir / runs.STATE).read_text())["epoch"] == 2
    assert json.loads((run_dir / runs.CONFIG).read_text())["extended_from"] == [1]
    before, after = (keras.saving.load_model(runs.checkpoint_path(run_dir, epoch)) for epoch in (1, 2))
    stem = "stem_conv"  # the added epoch trained from epoch 1's weights, at a rate above zero
    assert not np.array_equal(before.get_layer(stem).get_weights()[0], after.get_layer(stem).get_weights()[0])
    with pytest.raises(ValueError, match=r"other settings \(seed: 0 -> 1\)"):
        fit("v3_small", train, validation, epochs=3, run_dir=run_dir, **{**TINY, "seed": 1})


@pytest.mark.slow
def test_without_a_run_directory_a_built_model_trains_in_memory_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train, validation = digits_sets()
    model = kmn.V1(input_shape=(32, 32, 3), classes=10, alpha=0.25)
    result = fit(model, train.take(256), validation.take(64), epochs=1, batch_size=64, flip=False, verbose=0)
    assert result.run_dir is None and result.best_epoch == 1 and len(result.history) == 1
    assert 0 <= result.best_accuracy <= 1 and result.model is not model
    assert list(tmp_path.iterdir()) == []


def test_bad_data_and_settings_are_refused_by_name(tmp_path):
    train, validation = digits_sets()
    with pytest.raises(ValueError, match="validation_data: fit keeps the best epoch by validation accuracy"):
        fit("v3_small", train, epochs=1, **TINY)
    with pytest.raises(ValueError, match="validation_data: a source string brings its own validation split"):
        fit("v3_small", "digits", validation, epochs=1, **TINY)
    with pytest.raises(ValueError, match="train_data: has label 9, but the model predicts 5 classes"):
        fit(kmn.V1(input_shape=(32, 32, 3), classes=5, alpha=0.25), train, validation, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        fit("v3_small", train.map(lambda x, y: (x, tf.one_hot(y, 10))), validation, **TINY)
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) learnig_rate; the settings are: epochs, "):
        fit("v3_small", train, validation, learnig_rate=0.1)
    with pytest.raises(ValueError, match="optimizer: unknown 'adam'; choose one of 'sgd', 'adamw'"):
        fit("v3_small", optimizer="adam")
    assert list(tmp_path.iterdir()) == []


KILLED = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from test_fit_python import TINY, digits_sets
    from keras_mobilenets.training.loop import fit
    train, validation = digits_sets()
    result = fit("v3_small", train, validation, epochs=3, run_dir=sys.argv[1], **{**TINY, "verbose": 2})
    print("EPOCHS", len(result.history))
""")


@pytest.mark.slow
def test_a_fit_killed_with_sigkill_resumes_when_called_again(tmp_path, kill_after_first_epoch):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-c", KILLED, str(run_dir), os.path.dirname(__file__)]
    state = run_dir / runs.STATE
    killed_at = kill_after_first_epoch(command, state)
    assert 1 <= killed_at < 3

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from epoch {killed_at + 1} of 3" in resumed.stdout
    assert "EPOCHS 3" in resumed.stdout
    assert [int(row["epoch"]) for row in history_rows(run_dir)] == [1, 2, 3]


def plain_fit_validation_accuracy(settle):
    """Plain Keras: our V3-Small, SGD with a cosine decay, 2 epochs of digits; top-1 on validation."""
    keras.utils.set_random_seed(0)
    splits = data.load("digits", image_size=32)
    train = data.pipeline(splits.train, 64, training=False)
    validation = data.pipeline(splits.validation, 64, training=False)
    model = kmn.V3Small(input_shape=(32, 32, 3), classes=10, alpha=0.35, minimalistic=True)
    if settle:
        assert settle_batch_norm(model, steps_per_epoch=len(train)) > 0
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=2 * len(train))
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=validation, epochs=2, verbose=0).history
    return history["accuracy"][-1], history["val_accuracy"][-1]


@pytest.mark.slow
def test_settle_batch_norm_makes_plain_model_fit_validate_far_above_chance():
    plain_train, plain = plain_fit_validation_accuracy(settle=False)
    settled_train, settled = plain_fit_validation_accuracy(settle=True)
    print(f"validation top-1 after 2 epochs: plain model.fit {plain:.3f}, with settle_batch_norm {settled:.3f} "
          f"(training {plain_train:.3f} / {settled_train:.3f})")
    assert plain_train > 0.7  # it learned: only its moving statistics lag
    assert plain < 0.3  # chance is 0.1
    assert settled > 0.6


def test_settle_batch_norm_lowers_momentum_only_and_refuses_bad_steps():
    inner = kmn.V3Small(input_shape=(32, 32, 3), classes=10, alpha=0.35, minimalistic=True)
    outer = keras.Sequential([keras.Input((32, 32, 3)), inner])

    def momenta():
        return sorted({layer.momentum for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)})

    assert momenta() == [0.999]  # V3's own
    assert settle_batch_norm(outer, steps_per_epoch=100_000) > 0  # the nested model's layers count
    assert momenta() == [0.999]  # 1 - 10 / 100000 would be slower: never raised
    settle_batch_norm(outer, steps_per_epoch=1000)
    assert momenta() == [pytest.approx(0.99)]  # 1 - 10 / 1000
    settle_batch_norm(outer, steps_per_epoch=20)
    assert momenta() == [0.9]  # the floor
    with pytest.raises(ValueError, match="steps_per_epoch: must be a positive integer"):
        settle_batch_norm(outer, steps_per_epoch=0)


def test_every_setting_is_a_train_option_with_help_and_default():
    from keras_mobilenets.app.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("train", "pipeline"):
        options = {action.dest: action for action in commands[command]._actions}
        for name, field in config.FIELDS.items():
            action = options[name]
            assert action.option_strings == [f"--{name.replace('_', '-')}"] + (
                [f"--no-{name.replace('_', '-')}"] if field.type is bool else []), name
            assert field.metadata["help"] in action.help and "(default: " in action.help, name
    args = commands["train"].parse_args(["--epochs", "3", "--no-flip", "--bn-momentum", "0.95", "--verbose", "2"])
    assert config.given(args) == {"epochs": 3, "flip": False, "bn_momentum": 0.95, "verbose": 2}
    assert config.TrainConfig(**config.given(args)).epochs == 3


def test_train_config_checks_values_in_one_place():
    assert config.TrainConfig().as_dict()["optimizer"] == "sgd"
    for settings, message in [({"epochs": 0}, "epochs: must be at least 1"),
                              ({"batch_size": 2.5}, "batch_size: must be int, got 2.5"),
                              ({"flip": 1}, "flip: must be bool"),
                              ({"bn_momentum": "high"}, "bn_momentum: must be 'auto', 'keep' or a number"),
                              ({"epochs": 2, "freeze_epochs": 3}, r"freeze_epochs: must be from 0 to epochs \(2\)"),
                              ({"validation_fraction": 0.5, "test_fraction": 0.5}, "must leave some data")]:
        with pytest.raises(ValueError, match=message):
            config.TrainConfig(**settings)
    assert config.TrainConfig(learning_rate=1).learning_rate == 1.0
