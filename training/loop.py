"""`fit`: a model and data to a trained model, with the package's recipe; resumable in a run directory.

Re-running the same call after a kill (even SIGKILL) resumes from the last
completed epoch and ends with the same number of epochs; see runs.py for
why no kill can corrupt a file.
"""
import dataclasses
import math
import pathlib
import typing

import keras
import tensorflow as tf

import keras_mobilenets as kmn
from keras_mobilenets.files import write_atomically
from keras_mobilenets.training import data, distributed, recipe, runs
from keras_mobilenets.training.batch_norm import batch_norm_layers, settle_batch_norm
from keras_mobilenets.training.config import TRAINED_BY, TrainConfig

DEFAULT_IMAGE_SIZE = 224
# What config.json holds besides the settings: what was trained on what.
RUN_FACTS = ("model", "model_kwargs", "dataset", "class_names", "workers", "extended_from")


@dataclasses.dataclass
class Result:
    run_dir: typing.Optional[pathlib.Path]  # None: trained in memory only
    model: keras.Model  # as trained to the last epoch (the EMA weights with ema=True)
    best_epoch: int
    best_accuracy: float  # validation top-1 of the best epoch (model.keras in a run directory)
    history: list  # one dict per epoch: epoch, learning_rate, loss, accuracy, val_accuracy, ...


@dataclasses.dataclass
class _Data:
    train: tf.data.Dataset  # unbatched (image, label), square at the image size
    validation: tf.data.Dataset
    train_count: int
    class_names: list
    source: typing.Optional[str]  # the source string; None for a tf.data set given in Python


def fit(model="v3_small", train_data="digits", validation_data=None, *, epochs=5, callbacks=None, run_dir=None,
        **settings):
    """Train `model` on `train_data` with the MobileNet recipe; returns a `Result`.

    model: a variant name (e.g. "v3_small", built for the data's classes and
        `image_size`) or a Keras model (trained as a copy; its input size is used).
    train_data: "digits" (bundled, offline), "tfds:NAME", a folder with one
        sub-folder per class, or a `tf.data.Dataset` of (image HxWx3 in 0..255,
        integer label) examples, unbatched as `tfds.load(..., as_supervised=True)`
        gives them (a batched one is unbatched). Images are resized and cropped
        square to the image size; training ones are augmented.
    validation_data: with a source string, None (the source's own validation
        split); with a tf.data set, a tf.data set like it (fit keeps the best
        epoch by validation accuracy). With a variant name and tf.data, the
        number of classes is 1 + the largest label seen in either.
    epochs: the total number of epochs. On a finished run, more epochs extend
        it: the added epochs are a phase of their own (a warm restart): a fresh
        optimizer whose schedule warms up and decays to zero over the added
        epochs, peaking at the rate of the run's last phase.
    callbacks: Keras callbacks, passed to `model.fit` (each epoch's end once).
    run_dir: None writes nothing; a directory receives config.json, the best
        model, checkpoints and history (runs.py) and makes the call resumable:
        the same call again continues after the last completed epoch. Other
        settings than the run's are refused, naming each change (a tf.data set
        is not compared: give the same one).
    settings: the fields of `TrainConfig` (batch_size, image_size, seed,
        optimizer, learning_rate, ..., strategy); see `TrainConfig` for each one's
        meaning and default. An unknown name raises TypeError.

    Transfer learning: `weights` ("imagenet" or a file) or `init_from` (another
    run directory) start the backbone from trained weights; the backbone stays
    frozen for `freeze_epochs`, then everything is fine-tuned at
    `fine_tune_learning_rate` (default: a tenth of `learning_rate`).
    `bn_momentum="auto"` applies `settle_batch_norm`.
    """
    config = TrainConfig.from_settings(epochs=epochs, **settings)
    named = isinstance(model, str)
    _check_model_options(named, config)
    image_size = (config.image_size or DEFAULT_IMAGE_SIZE) if named else _square_input_size(model, config.image_size)
    distribute = recipe.make_strategy(config.strategy)  # first: multi_worker must come before any TF op
    workers = distributed.worker_count(distribute)
    global_batch = config.batch_size * workers  # batch_size is one worker's
    keras.utils.set_random_seed(config.seed)
    found = _load_data(train_data, validation_data, config, image_size,
                       classes=None if named else model.outputs[0].shape[-1])
    if global_batch > found.train_count:
        raise ValueError(f"batch_size: {config.batch_size} is larger than the training split "
                         f"({found.train_count} images) shared by {workers} worker(s); "
                         f"use at most {found.train_count // workers}")
    classes = len(found.class_names)
    model_options = {key: value for key, value in (("alpha", config.alpha), ("minimalistic", config.minimalistic))
                     if value}
    build_kwargs = {**model_options, "input_shape": [image_size, image_size, 3], "classes": classes}
    learning_rate = config.learning_rate or recipe.default_learning_rate(config.optimizer, global_batch)
    config = config.replace(  # what "default" turned out to be, as the run records it
        image_size=image_size, learning_rate=learning_rate,
        weight_decay=recipe.WEIGHT_DECAY[config.optimizer] if config.weight_decay is None else config.weight_decay,
        fine_tune_learning_rate=config.fine_tune_learning_rate or learning_rate / 10)
    record = {**config.as_dict(), "model": model if named else None, "model_kwargs": build_kwargs if named else None,
              "dataset": found.source, "class_names": found.class_names, "workers": workers}
    run_dir = None if run_dir is None else pathlib.Path(run_dir)
    record["extended_from"] = [] if run_dir is None else _check_same_run(run_dir, record)
    state = runs.read_state(run_dir)
    if config.verbose != 0 and run_dir is not None:
        _say_where_it_starts(run_dir, state["epoch"], config.epochs, record["extended_from"])

    chief = recipe.is_chief(distribute)
    writes = chief and run_dir is not None
    previous_policy = keras.config.dtype_policy()
    try:
        if config.mixed_precision:
            keras.config.set_dtype_policy(config.mixed_precision)
        with distribute.scope():
            net, backbone = _make_model(model, build_kwargs, config, fresh=state["epoch"] == 0)
        if config.mixed_precision:  # softmax and loss in float32, as Keras's mixed-precision guide says
            net.layers[-1].dtype_policy = keras.DTypePolicy("float32")
        if writes:  # only now: a bad model argument leaves no run directory behind
            run_dir.mkdir(parents=True, exist_ok=True)
            runs.remove_temporaries(run_dir)
            runs.write_json(run_dir / runs.CONFIG, record)
            write_atomically(run_dir / runs.LABELS, "".join(f"{name}\n" for name in found.class_names))
        train = data.pipeline(found.train, global_batch, training=True, flip=config.flip,
                              min_crop_area=config.min_crop_area,
                              one_hot_classes=classes)  # label smoothing needs one-hot labels
        validation = data.pipeline(found.validation, global_batch, training=False, one_hot_classes=classes)
        steps = math.ceil(found.train_count / global_batch)
        _set_bn_momentum(net, config.bn_momentum, steps)

        trained = False
        for begin, end, rate, frozen in _phases(config, record["extended_from"], backbone):
            if end <= max(begin, state["epoch"]):
                continue
            with distribute.scope():
                _compile(net, config, frozen=frozen, learning_rate=rate, epochs=end - begin, steps_per_epoch=steps)
                _restore(net, run_dir, state["epoch"], same_phase=state["epoch"] > begin)
            ema_callback = keras.callbacks.SwapEMAWeights() if config.ema else None
            # Every worker saves (TensorFlow's multi-worker rule); only the chief's write_dir is the run's.
            write_dir = None if run_dir is None else distributed.write_dir(run_dir, distribute)
            ours = [ema_callback, runs.RunCheckpoint(write_dir, state, keep=config.keep_checkpoints, ema=ema_callback)]
            if write_dir is not None:
                ours.append(keras.callbacks.TensorBoard(str(write_dir / runs.LOGS), write_graph=False, profile_batch=0))
            distributed.keras_fit(distribute, net, train, validation_data=validation,
                                  initial_epoch=max(begin, state["epoch"]), epochs=end,
                                  callbacks=[callback for callback in ours if callback is not None] + list(callbacks or ()),
                                  verbose=config.verbose, shuffle=False)  # the pipeline shuffles
            trained = True
        if not trained:  # finished before: hand back the last epoch's weights
            with distribute.scope():
                _restore(net, run_dir, state["epoch"], same_phase=False)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return Result(run_dir, net, state["best_epoch"], state["best"], state["history"])


def _check_model_options(named, config):
    if not named:
        for name in ("weights", "init_from", "freeze_epochs", "mixed_precision", "alpha", "minimalistic"):
            if getattr(config, name):
                raise ValueError(f"{name}: needs the model as a variant name (e.g. 'v3_small'), not a built model")
    if config.init_from is not None:
        runs.read_config(config.init_from)
        if not (pathlib.Path(config.init_from) / runs.MODEL).is_file():
            raise ValueError(f"init_from: {config.init_from} has no {runs.MODEL}")


def _square_input_size(model, image_size):
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: must be a variant name ({', '.join(kmn.VARIANTS)}) or a Keras model, "
                         f"got {type(model).__name__}")
    height, width = model.inputs[0].shape[1:3]
    if height is None or height != width:
        raise ValueError(f"model: needs a fixed square input, got {tuple(model.inputs[0].shape[1:])}")
    if image_size not in (None, height):
        raise ValueError(f"image_size: {image_size} disagrees with the model's input size {height}")
    return height


def _load_data(train_data, validation_data, config, image_size, *, classes):
    """The training and validation examples, square at `image_size`, and the class names.

    `classes`: the built model's number of outputs (None for a variant name).
    """
    if isinstance(train_data, tf.data.Dataset):
        if validation_data is None:
            raise ValueError("validation_data: fit keeps the best epoch by validation accuracy; give a "
                             "tf.data.Dataset of (image, label) examples held out from train_data")
        train = data.examples(train_data, "train_data", image_size=image_size, training=True)
        validation = data.examples(validation_data, "validation_data", image_size=image_size, training=False)
        train_count, train_largest = _count_and_largest_label(train)
        validation_count, validation_largest = _count_and_largest_label(validation)
        _check_non_empty(train_count, validation_count, "validation_data")
        largest = max(train_largest, validation_largest)
        if classes is not None and largest >= classes:
            raise ValueError(f"train_data: has label {largest}, but the model predicts {classes} classes "
                             f"(labels 0 to {classes - 1})")
        return _Data(train, validation, train_count, [str(label) for label in range(classes or largest + 1)], None)
    if validation_data is not None:
        raise ValueError("validation_data: a source string brings its own validation split; give "
                         "validation_data only with a tf.data.Dataset as train_data")
    if not isinstance(train_data, (str, pathlib.Path)):
        raise ValueError("train_data: must be 'digits', 'tfds:NAME', a folder or a tf.data.Dataset of "
                         f"(image, label) examples, got {type(train_data).__name__}")
    splits = data.load(train_data, image_size=image_size, seed=config.seed, data_dir=config.data_dir,
                       download=config.download, validation_fraction=config.validation_fraction,
                       test_fraction=config.test_fraction)
    _check_non_empty(data.count(splits.train), data.count(splits.validation), "validation_fraction")
    if classes is not None and classes != len(splits.class_names):
        raise ValueError(f"train_data: {train_data} has {len(splits.class_names)} classes but the model "
                         f"predicts {classes}")
    return _Data(splits.train, splits.validation, data.count(splits.train), splits.class_names, str(train_data))


def _check_non_empty(train_count, validation_count, validation_argument):
    if train_count == 0:
        raise ValueError("train_data: has no examples")
    if validation_count == 0:
        raise ValueError(f"{validation_argument}: fit keeps the best epoch by validation accuracy; "
                         "it needs a non-empty validation set")


def _count_and_largest_label(dataset):
    """One pass over the labels: how many examples, and the largest label (-1 for none)."""
    count, largest = dataset.map(lambda image, label: label).reduce(
        (tf.constant(0, tf.int64), tf.constant(-1, tf.int32)),
        lambda state, label: (state[0] + 1, tf.maximum(state[1], label)))
    return int(count), int(largest)


def _check_same_run(run_dir, record):
    """Refuses a run directory trained with other settings; returns the epochs it was extended from.

    Only more epochs may differ: each earlier total starts a new phase (see fit).
    """
    if not (run_dir / runs.CONFIG).is_file():
        return []
    old = runs.read_config(run_dir)
    compared = [key for key in (*TRAINED_BY, *RUN_FACTS) if key not in ("epochs", "extended_from")]
    old.setdefault("workers", 1)  # runs made before multi-worker training trained on one
    changes = [f"{key}: {old.get(key)!r} -> {record.get(key)!r}" for key in compared
               if old.get(key) != record.get(key)]
    if record["epochs"] < old["epochs"]:
        changes.append(f"epochs: {old['epochs']} -> {record['epochs']} (a run can get more epochs, not fewer)")
    if changes:
        raise ValueError(f"run: {run_dir} holds a run with other settings ({'; '.join(changes)}); "
                         "re-run with the same settings to resume (or more epochs to extend it), "
                         "or pick another run directory")
    earlier = list(old.get("extended_from", []))
    return earlier + [old["epochs"]] if record["epochs"] > old["epochs"] else earlier


def _say_where_it_starts(run_dir, done, epochs, extended_from):
    if done >= epochs:
        print(f"{run_dir}: all {epochs} epochs were trained before; nothing to train", flush=True)
    elif extended_from and done >= extended_from[-1]:
        print(f"{run_dir}: extending the run from {extended_from[-1]} to {epochs} epochs, "
              f"from epoch {done + 1}", flush=True)
    elif done > 0:
        print(f"{run_dir}: resuming from epoch {done + 1} of {epochs} ({done} done before)", flush=True)


def _phases(config, extended_from, backbone):
    """(first epoch, end epoch, peak learning rate, frozen layer names) of each schedule.

    The frozen epochs, the rest, and one more per extension of a finished run;
    each phase gets a fresh optimizer whose schedule spans it.
    """
    ends = sorted({config.freeze_epochs, *extended_from, config.epochs} - {0})
    phases, begin = [], 0
    for end in ends:
        frozen = begin < config.freeze_epochs
        rate = config.fine_tune_learning_rate if config.freeze_epochs and not frozen else config.learning_rate
        phases.append((begin, end, rate, backbone if frozen else frozenset()))
        begin = end
    return phases


def _make_model(model, build_kwargs, config, *, fresh):
    """The model to train (call inside the strategy's scope) and the names of its frozen layers.

    The backbone is what the variant has without its top (include_top=False).
    """
    if not isinstance(model, str):  # a model built elsewhere: copy it into this scope
        # from_config, not clone_model: a kmn model keeps its record of how it was built (QAT needs it)
        clone = type(model).from_config(model.get_config())
        clone.set_weights(model.get_weights())
        return clone, frozenset()
    freeze = config.freeze_epochs > 0
    net = kmn.build(model, **build_kwargs)
    backbone = None
    if config.weights is not None or freeze:
        load = config.weights if fresh else None
        backbone = kmn.build(model, **build_kwargs, include_top=False, weights=load)
        if load is not None:
            _copy_weights(backbone, net)
    if fresh and config.init_from is not None:
        _copy_weights(keras.saving.load_model(pathlib.Path(config.init_from) / runs.MODEL, compile=False), net)
    return net, frozenset(layer.name for layer in backbone.layers) if freeze else frozenset()


def _copy_weights(source, target):
    """Copies weights layer by layer, by name, where the shapes agree (a new classifier stays new)."""
    names = {layer.name for layer in target.layers}
    for layer in source.layers:
        if layer.name not in names or not layer.weights:
            continue
        destination = target.get_layer(layer.name)
        values = layer.get_weights()
        if [w.shape for w in destination.get_weights()] == [v.shape for v in values]:
            destination.set_weights(values)


def _set_bn_momentum(net, bn_momentum, steps_per_epoch):
    if bn_momentum == "auto":
        settle_batch_norm(net, steps_per_epoch)
    elif bn_momentum != "keep":
        for layer in batch_norm_layers(net):
            layer.momentum = bn_momentum


def _compile(net, config, *, frozen, learning_rate, epochs, steps_per_epoch):
    """Compiles one phase: which layers train, and a fresh optimizer whose schedule spans the phase."""
    for layer in net.layers:
        layer.trainable = layer.name not in frozen
    optimizer = recipe.make_optimizer(
        config.optimizer, learning_rate=learning_rate, steps=epochs * steps_per_epoch,
        warmup_steps=config.warmup_epochs * steps_per_epoch, weight_decay=config.weight_decay,
        momentum=config.momentum, ema=config.ema, ema_momentum=config.ema_momentum)
    classes = net.outputs[0].shape[-1]
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5")],
        jit_compile=config.jit_compile,
    )


def _restore(net, run_dir, epoch, *, same_phase):
    """Resume from the checkpoint of `epoch`: weights and optimizer within a phase, weights across."""
    if epoch == 0:
        return
    path = runs.checkpoint_path(run_dir, epoch)
    if same_phase:
        net.optimizer.build(net.trainable_variables)
        net.load_weights(path)
    else:
        _copy_weights(keras.saving.load_model(path, compile=False), net)
