"""Quantization-aware training: a trained float run -> an int8-ready tf_keras model in the run.

    qat_model = keras_mobilenets.training.quantization_aware("runs/flowers", epochs=3)
    qat_model = keras_mobilenets.training.qat.load_qat_model("runs/flowers")

tfmot and tf_keras are imported inside the functions only: importing this
module leaves Keras 3 alone.
"""
import csv
import pathlib

from keras_mobilenets.files import save_atomically

# Adam at 3e-5: QAT only adjusts a trained model. On digits (benchmarks/qat_accuracy.py,
# 3 seeds) it kept int8 top-1 closest to float and agreement >= 98% on every seed; 1e-4 did not.
LEARNING_RATE = 3e-5
BATCH_NORM_MODES = ("frozen", "train")


def _read_run(run_dir):
    from keras_mobilenets.training import runs

    config = runs.read_config(run_dir)
    if not (pathlib.Path(run_dir) / runs.MODEL).is_file():
        raise FileNotFoundError(f"run {run_dir}: no {runs.MODEL} yet; finish training it first")
    if not config.get("model"):
        raise ValueError(
            f"run {run_dir}: was trained from a Keras model object, not a variant name, so its "
            "architecture cannot be rebuilt in tf_keras; train it with --model NAME"
        )
    return config


def _best_model_saver(path, monitor, best_so_far=None):
    """A tf_keras callback that saves the model atomically when `monitor` beats the best so far."""
    import tf_keras

    class SaveBest(tf_keras.callbacks.Callback):
        best = best_so_far

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is not None and (self.best is None or value > self.best):
                self.best = value
                save_atomically(path, self.model.save)

    return SaveBest()


def _best_so_far(history_path, monitor):
    """The best `monitor` value in a fine-tune's CSV history (None without one)."""
    if not history_path.is_file():
        return None
    with open(history_path, newline="") as file:
        values = [float(row[monitor]) for row in csv.DictReader(file) if row.get(monitor)]
    return max(values, default=None)


def fine_tune(qat_model, train, validation, *, epochs, learning_rate=LEARNING_RATE, label_smoothing=0.0,
              run_dir=None, write_dir=None, verbose="auto"):
    """Fine-tune a QAT model on batched (image, one-hot label) data sets; with `run_dir`, resumable.

    In a run directory, an interrupted fine-tune started again resumes from its
    last finished epoch (BackupAndRestore) and keeps its best score so far; the
    history goes to qat_history.csv and the best model by validation accuracy
    to qat_model.h5. A fine-tune that is not a resumption starts a new history.
    On a worker other than the chief, `write_dir` (distributed.write_dir) takes
    the history and the model.
    """
    import tf_keras

    from keras_mobilenets.training import runs

    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate),
        loss=tf_keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[tf_keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    callbacks = []
    if run_dir is not None:
        run_dir = pathlib.Path(run_dir)
        history = pathlib.Path(write_dir or run_dir) / runs.QAT_HISTORY
        # BackupAndRestore empties its folder when a fit ends: files there mean an interrupted one.
        resuming = any(path.is_file() for path in (run_dir / runs.QAT_BACKUP).rglob("*"))
        if not resuming:
            history.unlink(missing_ok=True)
        callbacks = [
            tf_keras.callbacks.BackupAndRestore(str(run_dir / runs.QAT_BACKUP)),
            tf_keras.callbacks.CSVLogger(str(history), append=True),
            _best_model_saver(pathlib.Path(write_dir or run_dir) / runs.QAT_MODEL, "val_accuracy",
                              best_so_far=_best_so_far(history, "val_accuracy") if resuming else None),
        ]
    return qat_model.fit(
        train, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=verbose
    )


def quantization_aware(run_dir, *, epochs, batch_size=32, learning_rate=LEARNING_RATE, batch_norm="frozen",
                       strategy="default", verbose="auto"):
    """QAT-fine-tune the run's float model on its own data; saves and returns the QAT model.

    The architecture is rebuilt in tf_keras from the same tables, the float
    weights are copied over, tfmot's 8-bit fake quantization is applied (conv +
    BN + ReLU folded as tfmot does; our configs for squeeze-excite, hard-swish
    and the preprocessing) and the model fine-tunes with a small learning rate
    and the float run's loss (label smoothing); BatchNorm stays frozen unless
    `batch_norm="train"` (see qat_model.qat_model_from).
    The model outputs probabilities, as the float model does.
    `strategy` as in training: "multi_worker" fine-tunes on the TF_CONFIG cluster
    (tf_keras runs it natively), `batch_size` being one worker's.
    """
    from keras_mobilenets.training import data, distributed, recipe, runs
    from keras_mobilenets.training.qat_model import check_supported, qat_model_from

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: must be a positive integer, got {epochs!r}")
    distribute = recipe.make_strategy(strategy)  # first: multi_worker must come before any TF op
    batch_size *= distributed.worker_count(distribute)
    config = _read_run(run_dir)
    check_supported(config["model"])
    run = runs.Run(run_dir)
    with distribute.scope():
        qat_model = qat_model_from(run.float_model(), config["model"], batch_norm=batch_norm,
                                   **config["model_kwargs"])
    splits = run.splits()
    # The float run's augmentation: e.g. no flips for digits.
    classes = len(splits.class_names)  # one-hot labels: the float run's label smoothing
    train = data.pipeline(splits.train, batch_size, training=True, flip=config.get("flip", True),
                          min_crop_area=config.get("min_crop_area", 0.25), one_hot_classes=classes)
    validation = data.pipeline(splits.validation, batch_size, training=False, one_hot_classes=classes)
    write_dir = distributed.write_dir(run_dir, distribute)
    with distribute.scope():  # tf_keras wants the optimizer and metrics made in the model's scope
        fine_tune(qat_model, distributed.shard_by_example(train), distributed.shard_by_example(validation),
                  epochs=epochs, learning_rate=learning_rate, label_smoothing=config["label_smoothing"],
                  run_dir=run_dir, write_dir=write_dir, verbose=verbose)
    return load_qat_model(write_dir)


def load_qat_model(run_dir):
    """The run's QAT tf_keras model (qat_model.h5), loaded with our custom objects."""
    import tf_keras

    from keras_mobilenets.training import runs
    from keras_mobilenets.training.qat_model import custom_objects, import_tfmot

    path = pathlib.Path(run_dir) / runs.QAT_MODEL
    if not path.is_file():
        raise FileNotFoundError(
            f"run {run_dir}: no {runs.QAT_MODEL}; run `keras-mobilenets qat --run {run_dir}` first"
        )
    tfmot = import_tfmot()
    with tfmot.quantization.keras.quantize_scope(custom_objects()):
        return tf_keras.models.load_model(path, compile=False)

