"""Quantization-aware training: a trained float model -> an int8-ready tf_keras model.

    qat_model = kmn.training.quantization_aware(model, train, validation, epochs=3)   # in memory
    qat_model = kmn.training.quantization_aware_run("runs/flowers", epochs=3)          # a run directory
    qat_model = kmn.training.load_qat_model("runs/flowers")

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


def _history_logger(path):
    """tf_keras's CSVLogger (appending, for resumed fine-tunes), counting epochs from 1 as history.csv does."""
    import tf_keras

    class FromOne(tf_keras.callbacks.CSVLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch + 1, logs)

    return FromOne(str(path), append=True)


def _best_so_far(history_path, monitor):
    """The best `monitor` value in a fine-tune's CSV history (None without one)."""
    if not history_path.is_file():
        return None
    with open(history_path, newline="") as file:
        values = [float(row[monitor]) for row in csv.DictReader(file) if row.get(monitor)]
    return max(values, default=None)


def fine_tune(qat_model, train, validation, *, epochs, learning_rate=LEARNING_RATE, label_smoothing=0.0,
              run_dir=None, write_dir=None, callbacks=None, verbose="auto"):
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
    callbacks = list(callbacks or [])
    if run_dir is not None:
        run_dir = pathlib.Path(run_dir)
        history = pathlib.Path(write_dir or run_dir) / runs.QAT_HISTORY
        # BackupAndRestore empties its folder when a fit ends: files there mean an interrupted one.
        resuming = any(path.is_file() for path in (run_dir / runs.QAT_BACKUP).rglob("*"))
        if not resuming:
            history.unlink(missing_ok=True)
        callbacks += [
            tf_keras.callbacks.BackupAndRestore(str(run_dir / runs.QAT_BACKUP)),
            _history_logger(history),
            _best_model_saver(pathlib.Path(write_dir or run_dir) / runs.QAT_MODEL, "val_accuracy",
                              best_so_far=_best_so_far(history, "val_accuracy") if resuming else None),
        ]
    return qat_model.fit(
        train, validation_data=validation, epochs=epochs, callbacks=callbacks, verbose=verbose
    )


def quantization_aware(model, train_data, validation_data=None, *, epochs=3, batch_size=32,
                       learning_rate=LEARNING_RATE, batch_norm="frozen", label_smoothing=0.1, flip=True,
                       min_crop_area=0.25, callbacks=None, verbose="auto"):
    """Quantization-aware fine-tuning of a trained Keras 3 model in memory; returns the QAT model.

    The architecture is rebuilt in tf_keras (tfmot quantizes only Keras 2
    models) from the variant and arguments the model records (see
    `keras_mobilenets.architecture_of`), the float weights are copied over,
    tfmot's 8-bit fake quantization is applied (conv + BN + ReLU folded as
    tfmot does; our configs for squeeze-excite, hard-swish, the preprocessing
    and attention) and the model fine-tunes with a small learning rate. Convert
    the result with `kmn.tflite.convert(qat_model, path, quantization="qat-int8")`.

    Args:
        model: a Keras 3 model built by a keras_mobilenets builder (`kmn.V3Small(...)`,
            `kmn.build(...)`), trained or not, or loaded from the `.keras` file of one.
        train_data: a `tf.data.Dataset` of (image, integer label) pairs, images
            H x W x 3 in 0..255 at the model's input size, unbatched like
            `tfds.load(..., as_supervised=True)` gives them (a batched one is
            unbatched). Shuffled and augmented as `fit` does.
        validation_data: the same kind of data set, or None (the default): no validation.
        epochs: fine-tuning epochs. Default 3.
        batch_size: Default 32.
        learning_rate: Adam's learning rate. Default 3e-5 (QAT only adjusts a trained model).
        batch_norm: "frozen" (the default): BatchNorm keeps the float model's
            statistics, which the int8 graph folds; "train": batch statistics.
        label_smoothing: of the cross-entropy loss; default 0.1, as `fit`'s.
        flip: random horizontal flips while training. Default True.
        min_crop_area: smallest random crop, as a fraction of the image. Default 0.25.
        callbacks: tf_keras callbacks passed to the QAT model's `fit` (Keras 3
            callbacks do not work on a tf_keras model). Default None.
        verbose: Keras progress output. Default "auto".

    Returns:
        The fine-tuned QAT tf_keras model (probabilities out, as the float model).

    Raises:
        ValueError: a model no keras_mobilenets builder made, data that is not
            (image, label) pairs at the model's input size, or a bad option.
    """
    _check_epochs(epochs)
    qat_model, train, validation = _prepare(model, train_data, validation_data,
                                            batch_size=batch_size, batch_norm=batch_norm, flip=flip,
                                            min_crop_area=min_crop_area)
    fine_tune(qat_model, train, validation, epochs=epochs, learning_rate=learning_rate,
              label_smoothing=label_smoothing, callbacks=callbacks, verbose=verbose)
    return qat_model


def quantization_aware_run(run, *, epochs=3, batch_size=32, learning_rate=LEARNING_RATE, batch_norm="frozen",
                           strategy="default", verbose="auto"):
    """Quantization-aware fine-tuning of a run's float model on the run's own data, into the run.

    What `keras-mobilenets qat` and the pipeline call. The run's model.keras
    fine-tunes on its training split (with the run's augmentation and label
    smoothing) and is validated on its validation split; the best model by
    validation accuracy is saved as qat_model.h5 and the history as
    qat_history.csv. An interrupted fine-tune started again resumes from its
    last finished epoch.

    Args:
        run: a run directory (path) or a `keras_mobilenets.training.Run`.
        epochs, batch_size, learning_rate, batch_norm, verbose: as for
            `quantization_aware`.
        strategy: as in training; "multi_worker" fine-tunes on the TF_CONFIG
            cluster (tf_keras runs it natively), `batch_size` being one
            worker's; the chief writes the run's files.

    Returns:
        The best QAT tf_keras model (as saved in qat_model.h5).

    Raises:
        FileNotFoundError: not a run directory, or a run with no model.keras yet.
        ValueError: a run whose model no keras_mobilenets builder made, or a bad option.
    """
    from keras_mobilenets.training import distributed, recipe, runs

    _check_epochs(epochs)
    distribute = recipe.make_strategy(strategy)  # first: multi_worker must come before any TF op
    run = run if isinstance(run, runs.Run) else runs.Run(run)
    config = run.config
    model = run.float_model()
    splits = run.splits()
    write_dir = distributed.write_dir(run.dir, distribute)
    with distribute.scope():  # tf_keras makes the model, optimizer and metrics in the strategy's scope
        qat_model, train, validation = _prepare(model, splits.train, splits.validation,
                                                batch_size=batch_size * distributed.worker_count(distribute),
                                                batch_norm=batch_norm, flip=config.get("flip", True),
                                                min_crop_area=config.get("min_crop_area", 0.25))
        fine_tune(qat_model, distributed.shard_by_example(train), distributed.shard_by_example(validation),
                  epochs=epochs, learning_rate=learning_rate, label_smoothing=config["label_smoothing"],
                  run_dir=run.dir, write_dir=write_dir, verbose=verbose)
    return load_qat_model(write_dir)


def _check_epochs(epochs):
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs: must be a positive integer, got {epochs!r}")


def _prepare(model, train_data, validation_data, *, batch_size, batch_norm, flip, min_crop_area):
    """The QAT model of `model`, and the batched one-hot data sets it fine-tunes on."""
    from keras_mobilenets.models import architecture_of
    from keras_mobilenets.training import data
    from keras_mobilenets.training.qat_model import qat_model_from

    variant, arguments = architecture_of(model)
    if not arguments["include_top"]:
        raise ValueError("model: quantization-aware training fine-tunes a classifier on labels; "
                         "give a model built with include_top=True")
    image_shape = tuple(model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])  # one-hot labels: what label smoothing needs
    train = _examples(train_data, "train_data", image_shape, training=True)
    validation = None if validation_data is None else _examples(validation_data, "validation_data", image_shape,
                                                                 training=False)
    # Calibration: the training images as they are, in order, so every worker of a cluster sees the same.
    calibration = data.pipeline(train, batch_size, training=False, one_hot_classes=classes)
    qat_model = qat_model_from(model, variant, batch_norm=batch_norm, calibration_data=calibration, **arguments)
    train = data.pipeline(train, batch_size, training=True, flip=flip, min_crop_area=min_crop_area,
                          one_hot_classes=classes)
    if validation is not None:
        validation = data.pipeline(validation, batch_size, training=False, one_hot_classes=classes)
    return qat_model, train, validation


def _examples(dataset, argument, image_shape, *, training):
    """`dataset` as the model's (image, label) examples, made as fit makes them (data.examples)."""
    import tensorflow as tf

    from keras_mobilenets.training import data

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"{argument}: must be a tf.data.Dataset of (image, integer label) pairs, "
                         f"got {type(dataset).__name__}")
    height, width = image_shape[:2]
    if height is None or height != width:
        raise ValueError(f"model: needs a fixed square input, got {image_shape}")
    return data.examples(dataset, argument, image_size=height, training=training)


def load_qat_model(run_dir):
    """The QAT tf_keras model a run holds (qat_model.h5), ready to convert with "qat-int8".

    Args:
        run_dir: the run directory `quantization_aware_run` fine-tuned into.

    Returns:
        The QAT tf_keras model, loaded with our layers and QuantizeConfigs.

    Raises:
        FileNotFoundError: the run has no qat_model.h5.
    """
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

