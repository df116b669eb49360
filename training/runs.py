"""The run directory, the hand-off between stages: runs/NAME/.

    config.json          the TrainConfig settings (config.py) with defaults worked out, and what was
                         trained on what: model, model_kwargs, dataset (null: a tf.data set given
                         in Python), class_names, extended_from (earlier epoch totals)
    model.keras          best model by validation accuracy
    checkpoints/         epoch-NNN.keras after each epoch (model and optimizer)
    state.json           last completed epoch; written last, so it is the commit point
    history.csv          one row per epoch
    labels.txt           one class name per line
    logs/                TensorBoard
    qat_model.h5         the quantization-aware model (QAT stage), qat_history.csv
    model_<mode>.tflite  TFLite files (TFLite stage); conversions.json says what each came from
    model_<mode>.predictions.json  each file's (and its source model's) prediction per test image
    pipeline.json        the pipeline's record of its stages and the settings they ran with

`Run` owns a run directory: every stage and command asks it for the config,
the files, the data splits exactly as training made them, the models and the
labels, so that none of them rebuilds these on its own.

Every file is written to a temporary name and renamed into place, so a kill
at any moment leaves either the old file or the new one, never half of one.
"""
import csv
import io
import json
import pathlib

import keras

import keras_mobilenets.layers  # noqa: F401  (registers MobileNet and LayerScale: load_model needs them)
from keras_mobilenets.files import save_atomically, write_atomically

CONFIG = "config.json"
MODEL = "model.keras"
STATE = "state.json"
HISTORY = "history.csv"
LABELS = "labels.txt"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
QAT_MODEL = "qat_model.h5"
QAT_HISTORY = "qat_history.csv"
QAT_BACKUP = "qat_backup"
CONVERSIONS = "conversions.json"
PIPELINE = "pipeline.json"
PREDICTIONS_SUFFIX = ".predictions.json"


class Run:
    """A run directory: its config, files, data splits, models and labels."""

    def __init__(self, run_dir):
        self.dir = pathlib.Path(run_dir)

    def __repr__(self):
        return f"Run({str(self.dir)!r})"

    @property
    def config(self):
        return read_config(self.dir)

    def path(self, name):
        return self.dir / name

    def tflite_path(self, quantization):
        return self.dir / f"model_{quantization}.tflite"

    def splits(self):
        """train / validation / test exactly as training made them (source, data_dir, seed, fractions)."""
        from keras_mobilenets.training import data

        config = self.config
        if config["dataset"] is None:
            raise ValueError(f"run {self.dir}: was trained on a tf.data.Dataset given in Python, so its data "
                             "cannot be rebuilt from the run; pass the data to the stage yourself "
                             "(e.g. keras_mobilenets.tflite.evaluate(path, dataset))")
        return data.load(config["dataset"], image_size=config["image_size"], seed=config["seed"],
                         data_dir=config.get("data_dir"), validation_fraction=config["validation_fraction"],
                         test_fraction=config["test_fraction"])

    def settings(self):
        """The run's TrainConfig, as it trained (defaults worked out)."""
        from keras_mobilenets.training.config import NAMES, TrainConfig

        config = self.config
        return TrainConfig(**{name: config[name] for name in NAMES if name in config})

    def labels(self):
        path = self.dir / LABELS
        if path.is_file():
            return [line for line in path.read_text().splitlines() if line.strip()]
        return list(self.config["class_names"])

    def float_model(self):
        path = self.dir / MODEL
        if not path.is_file():
            raise FileNotFoundError(f"run {self.dir}: no {MODEL} yet; finish an epoch of training first")
        return keras.saving.load_model(path, compile=False)

    def qat_model(self):
        from keras_mobilenets.training.qat import load_qat_model

        return load_qat_model(self.dir)

    def source_model(self, quantization):
        """The model a .tflite of `quantization` is converted from: the QAT model for qat-int8."""
        return self.qat_model() if quantization == "qat-int8" else self.float_model()

    def conversions(self):
        """{file name: {"quantization", "source", ...}} for the run's .tflite files."""
        path = self.dir / CONVERSIONS
        return json.loads(path.read_text()) if path.is_file() else {}

    def record_conversion(self, path, **details):
        conversions = self.conversions()
        conversions[pathlib.Path(path).name] = details
        write_json(self.dir / CONVERSIONS, conversions)

    def predictions_path(self, tflite_path):
        return self.dir / (pathlib.Path(tflite_path).stem + PREDICTIONS_SUFFIX)

    def record_predictions(self, tflite_path, predictions):
        """Keeps a .tflite's per-image predictions so the report can be drawn again without evaluating."""
        write_atomically(self.predictions_path(tflite_path), json.dumps(predictions) + "\n")  # compact: one list a key

    def predictions(self, tflite_path):
        """What record_predictions kept for the file (FileNotFoundError if it was never evaluated so)."""
        path = self.predictions_path(tflite_path)
        if not path.is_file():
            raise FileNotFoundError(f"run {self.dir}: no {path.name}; evaluate {pathlib.Path(tflite_path).name} "
                                    "with the pipeline first")
        return json.loads(path.read_text())

    def containing(path):
        """The Run a file sits in (None when its folder holds no config.json)."""
        folder = pathlib.Path(path).resolve().parent
        return Run(folder) if (folder / CONFIG).is_file() else None

    containing = staticmethod(containing)


def write_json(path, value):
    write_atomically(path, json.dumps(value, indent=2) + "\n")


def save_model(model, path):
    save_atomically(path, model.save)


def remove_temporaries(run_dir):
    """Deletes half-written files a killed run left behind (they were never renamed into place)."""
    for path in pathlib.Path(run_dir).glob("**/.*.tmp-*"):
        path.unlink()


def read_config(run_dir):
    path = pathlib.Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"run: {run_dir} is not a run directory (no {CONFIG}); "
                                "train one with `keras-mobilenets train --run DIR`")
    return json.loads(path.read_text())


def read_state(run_dir):
    """The last completed epoch, best validation accuracy and history; a fresh state if none (or no run_dir)."""
    path = None if run_dir is None else pathlib.Path(run_dir) / STATE
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    return {"epoch": 0, "best": None, "best_epoch": None, "history": []}


def checkpoint_path(run_dir, epoch):
    return pathlib.Path(run_dir) / CHECKPOINTS / f"epoch-{epoch:03d}.keras"


def history_csv(history):
    columns = list(dict.fromkeys(key for row in history for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch: checkpoint, best model, history, then state.json (the commit).

    With run_dir None it writes nothing and only keeps `state` (history, best epoch).
    """

    def __init__(self, run_dir, state, *, keep, ema=None):
        super().__init__()
        self.run_dir = None if run_dir is None else pathlib.Path(run_dir)
        self.state = state
        self.keep = keep
        self.ema = ema  # the SwapEMAWeights callback when training with EMA
        self.writes = run_dir is not None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        row = {"epoch": done, "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))}
        row.update({key: float(value) for key, value in logs.items()})
        accuracy = row.get("val_accuracy")
        if self.writes:
            (self.run_dir / CHECKPOINTS).mkdir(exist_ok=True)
            save_model(self.model, checkpoint_path(self.run_dir, done))
        is_best = self.state["best"] is None or (accuracy is not None and accuracy > self.state["best"])
        if is_best and self.writes:
            if self.ema is not None:  # the best model is the EMA weights that were validated
                self.ema._swap_variables()
            save_model(self.model, self.run_dir / MODEL)
            if self.ema is not None:
                self.ema._swap_variables()
        if is_best:
            self.state.update(best=accuracy, best_epoch=done)
        self.state["epoch"] = done
        self.state["history"] = [r for r in self.state["history"] if r["epoch"] < done] + [row]
        if self.writes:
            write_atomically(self.run_dir / HISTORY, history_csv(self.state["history"]))
            write_json(self.run_dir / STATE, self.state)
            for old in range(done - self.keep, 0, -1):
                path = checkpoint_path(self.run_dir, old)
                if not path.exists():
                    break
                path.unlink()
