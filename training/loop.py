"""`fit`: a model and a data set to a trained model in a run directory.

Re-running the same call after a kill (even SIGKILL) resumes from the last
completed epoch and ends with the same number of epochs; see runs.py for
why no kill can corrupt a file.
"""
import dataclasses
import math
import pathlib

import keras

import keras_mobilenets as kmn
from keras_mobilenets.files import write_atomically
from keras_mobilenets.training import data, distributed, recipe, runs

# Options that may change between a kill and the re-run without changing what is trained.
RESUMABLE_CHANGES = ("strategy", "jit_compile", "data_dir", "keep_checkpoints")
DEFAULT_IMAGE_SIZE = 224


@dataclasses.dataclass
class Result:
    run_dir: pathlib.Path
    model: keras.Model  # as trained to the last epoch (the EMA weights with ema=True)
    best_epoch: int
    best_accuracy: float  # validation top-1 of model.keras
    history: list


def fit(model="v3_small", *, run_dir, dataset="digits", epochs=5, batch_size=64, image_size=None,
        model_kwargs=None, seed=0, optimizer="sgd", learning_rate=None, momentum=0.9,
        weight_decay=None, warmup_epochs=1, label_smoothing=0.1, ema=False, ema_momentum=0.999,
        mixed_precision=None, jit_compile=False, strategy="default", weights=None, init_from=None,
        freeze_epochs=0, fine_tune_learning_rate=None, flip=True, min_crop_area=0.25,
        data_dir=None, download=False, validation_fraction=0.1, test_fraction=0.1,
        bn_momentum="auto", keep_checkpoints=3, verbose="auto"):
    """Train `model` (a variant name, or a Keras model) on `dataset` into `run_dir`.

    Transfer learning: `weights` ("imagenet" or a file) or `init_from` (another
    run directory) start the backbone from trained weights; the backbone stays
    frozen for `freeze_epochs`, then everything is fine-tuned at
    `fine_tune_learning_rate` (default: a tenth of `learning_rate`).

    `bn_momentum`: BatchNorm moving-average momentum for this run. "auto" lets
    the moving statistics settle within a tenth of an epoch,
    min(model's, max(0.9, 1 - 10 / steps per epoch)), so that a short run on
    small data does not validate with statistics that lag the weights (V3's
    0.999 needs thousands of steps); None keeps the model's.
    """
    named = isinstance(model, str)
    _check_options(named, optimizer, strategy, mixed_precision, epochs, freeze_epochs, label_smoothing,
                   weights, init_from, model_kwargs, keep_checkpoints)
    if not named:
        image_size = _square_input_size(model, image_size)
    image_size = image_size or DEFAULT_IMAGE_SIZE
    run_dir = pathlib.Path(run_dir)
    distribute = recipe.make_strategy(strategy)  # first: multi_worker must come before any TF op
    workers = distributed.worker_count(distribute)
    global_batch = batch_size * workers  # batch_size is one worker's

    keras.utils.set_random_seed(seed)
    splits = data.load(dataset, image_size=image_size, seed=seed, data_dir=data_dir, download=download,
                       validation_fraction=validation_fraction, test_fraction=test_fraction)
    train_count = data.count(splits.train)
    if global_batch > train_count:
        raise ValueError(f"batch_size: {batch_size} is larger than the training split ({train_count} images) "
                         f"shared by {workers} worker(s); use at most {train_count // workers}")
    if data.count(splits.validation) == 0:
        raise ValueError("validation_fraction: fit picks the best model by validation accuracy; "
                         "it needs a non-empty validation split (a fraction > 0)")
    classes = len(splits.class_names)
    build_kwargs = {**(model_kwargs or {}), "input_shape": [image_size, image_size, 3], "classes": classes}
    learning_rate = learning_rate or recipe.default_learning_rate(optimizer, global_batch)
    weight_decay = recipe.WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay
    config = {
        "model": model if named else None,
        "model_kwargs": build_kwargs if named else None,
        "dataset": str(dataset), "image_size": image_size, "seed": seed,
        "class_names": splits.class_names, "data_dir": data_dir,
        "validation_fraction": validation_fraction, "test_fraction": test_fraction,
        "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer,
        "learning_rate": learning_rate,
        "fine_tune_learning_rate": fine_tune_learning_rate or learning_rate / 10,
        "momentum": momentum, "weight_decay": weight_decay, "warmup_epochs": warmup_epochs,
        "label_smoothing": label_smoothing, "ema": ema, "ema_momentum": ema_momentum,
        "mixed_precision": mixed_precision, "jit_compile": jit_compile, "strategy": strategy, "workers": workers,
        "weights": None if weights is None else str(weights),
        "init_from": None if init_from is None else str(init_from),
        "freeze_epochs": freeze_epochs, "flip": flip, "min_crop_area": min_crop_area,
        "bn_momentum": bn_momentum,
        "keep_checkpoints": keep_checkpoints,
    }
    _check_same_run(run_dir, config)
    state = runs.read_state(run_dir)

    chief = recipe.is_chief(distribute)
    previous_policy = keras.config.dtype_policy()
    try:
        if mixed_precision:
            keras.config.set_dtype_policy(mixed_precision)
        with distribute.scope():
            net, backbone = _make_model(model, build_kwargs, weights, init_from,
                                        fresh=state["epoch"] == 0, freeze=freeze_epochs > 0)
        if mixed_precision:  # softmax and loss in float32, as Keras's mixed-precision guide says
            net.layers[-1].dtype_policy = keras.DTypePolicy("float32")
        if chief:  # only now: a bad model argument leaves no run directory behind
            run_dir.mkdir(parents=True, exist_ok=True)
            runs.remove_temporaries(run_dir)
            runs.write_json(run_dir / runs.CONFIG, config)
            write_atomically(run_dir / runs.LABELS, "".join(f"{name}\n" for name in splits.class_names))
        train = data.pipeline(splits.train, global_batch, training=True, flip=flip, min_crop_area=min_crop_area,
                              one_hot_classes=classes)  # label smoothing needs one-hot labels
        validation = data.pipeline(splits.validation, global_batch, training=False, one_hot_classes=classes)
        steps = math.ceil(train_count / global_batch)
        _set_bn_momentum(net, bn_momentum, steps)

        phases = [(0, freeze_epochs, config["learning_rate"], backbone),
                  (freeze_epochs, epochs, config["fine_tune_learning_rate"] if freeze_epochs else learning_rate, ())]
        trained = False
        for begin, end, rate, frozen in phases:
            if end <= max(begin, state["epoch"]):
                continue
            with distribute.scope():
                _compile(net, config, frozen=frozen, learning_rate=rate, epochs=end - begin, steps_per_epoch=steps)
                _restore(net, run_dir, state["epoch"], same_phase=state["epoch"] > begin)
            ema_callback = keras.callbacks.SwapEMAWeights() if ema else None
            callbacks = [callback for callback in (
                ema_callback,
                runs.RunCheckpoint(distributed.write_dir(run_dir, distribute), state, keep=keep_checkpoints,
                                   ema=ema_callback),
                keras.callbacks.TensorBoard(str(distributed.write_dir(run_dir, distribute) / runs.LOGS),
                                            write_graph=False, profile_batch=0),
            ) if callback is not None]
            distributed.keras_fit(distribute, net, train, validation_data=validation,
                                  initial_epoch=max(begin, state["epoch"]), epochs=end, callbacks=callbacks,
                                  verbose=verbose, shuffle=False)  # the pipeline shuffles
            trained = True
        if not trained:  # finished before: hand back the last epoch's weights
            with distribute.scope():
                _restore(net, run_dir, state["epoch"], same_phase=False)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return Result(run_dir, net, state["best_epoch"], state["best"], state["history"])


def _check_options(named, optimizer, strategy, mixed_precision, epochs, freeze_epochs, label_smoothing,
                   weights, init_from, model_kwargs, keep_checkpoints):
    def check(condition, argument, message):
        if not condition:
            raise ValueError(f"{argument}: {message}")

    check(optimizer in recipe.OPTIMIZERS, "optimizer",
          f"unknown {optimizer!r}; choose one of {', '.join(recipe.OPTIMIZERS)}")
    check(strategy in recipe.STRATEGIES, "strategy",
          f"unknown {strategy!r}; choose one of {', '.join(recipe.STRATEGIES)}")
    check(mixed_precision in recipe.MIXED_PRECISION, "mixed_precision",
          f"must be one of {recipe.MIXED_PRECISION}, got {mixed_precision!r}")
    check(isinstance(epochs, int) and epochs >= 1, "epochs", f"must be a positive integer, got {epochs!r}")
    check(isinstance(freeze_epochs, int) and 0 <= freeze_epochs <= epochs, "freeze_epochs",
          f"must be an integer from 0 to epochs ({epochs}), got {freeze_epochs!r}")
    check(0 <= label_smoothing < 1, "label_smoothing", f"must be in [0, 1), got {label_smoothing!r}")
    check(isinstance(keep_checkpoints, int) and keep_checkpoints >= 1, "keep_checkpoints",
          f"must be at least 1 (resuming needs the last one), got {keep_checkpoints!r}")
    check(weights is None or init_from is None, "weights", "give weights or init_from, not both")
    check(not (model_kwargs or {}).keys() & {"weights", "input_shape", "classes"}, "model_kwargs",
          "must not set weights, input_shape or classes (use fit's weights, image_size and the data set)")
    if not named:
        check(model_kwargs is None, "model_kwargs", "only apply to a model given by name")
        for argument, value in (("weights", weights), ("init_from", init_from),
                                ("freeze_epochs", freeze_epochs), ("mixed_precision", mixed_precision)):
            check(not value, argument, "needs the model as a variant name (e.g. 'v3_small'), not a built model")
    if init_from is not None:
        runs.read_config(init_from)
        check((pathlib.Path(init_from) / runs.MODEL).is_file(), "init_from", f"{init_from} has no {runs.MODEL}")


def _square_input_size(model, image_size):
    height, width = model.inputs[0].shape[1:3]
    if height is None or height != width:
        raise ValueError(f"model: needs a fixed square input, got {tuple(model.inputs[0].shape[1:])}")
    if image_size not in (None, height):
        raise ValueError(f"image_size: {image_size} disagrees with the model's input size {height}")
    return height


def _check_same_run(run_dir, config):
    if not (run_dir / runs.CONFIG).is_file():
        return
    old = runs.read_config(run_dir)
    changed = sorted(key for key in config.keys() | old.keys()
                     if key not in RESUMABLE_CHANGES and config.get(key) != old.get(key))
    if changed:
        details = "; ".join(f"{key}: {old.get(key)!r} -> {config.get(key)!r}" for key in changed)
        raise ValueError(f"run: {run_dir} holds a run with other settings ({details}); "
                         "re-run with the same settings to resume, or pick another run directory")


def _make_model(model, build_kwargs, weights, init_from, *, fresh, freeze):
    """The model to train (call inside the strategy's scope) and the names of its frozen layers.

    The backbone is what the variant has without its top (include_top=False).
    """
    if not isinstance(model, str):  # a model built elsewhere: copy it into this scope
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone, frozenset()
    net = kmn.build(model, **build_kwargs)
    backbone = None
    if weights is not None or freeze:
        load = weights if fresh else None
        backbone = kmn.build(model, **build_kwargs, include_top=False, weights=load)
        if load is not None:
            _copy_weights(backbone, net)
    if fresh and init_from is not None:
        _copy_weights(keras.saving.load_model(pathlib.Path(init_from) / runs.MODEL, compile=False), net)
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
    if bn_momentum is None:
        return
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            auto = min(layer.momentum, max(0.9, 1 - 10 / steps_per_epoch))
            layer.momentum = auto if bn_momentum == "auto" else bn_momentum


def _compile(net, config, *, frozen, learning_rate, epochs, steps_per_epoch):
    """Compiles one phase: which layers train, and a fresh optimizer whose schedule spans the phase."""
    for layer in net.layers:
        layer.trainable = layer.name not in frozen
    optimizer = recipe.make_optimizer(
        config["optimizer"], learning_rate=learning_rate, steps=epochs * steps_per_epoch,
        warmup_steps=config["warmup_epochs"] * steps_per_epoch, weight_decay=config["weight_decay"],
        momentum=config["momentum"], ema=config["ema"], ema_momentum=config["ema_momentum"])
    classes = net.outputs[0].shape[-1]
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config["label_smoothing"]),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.TopKCategoricalAccuracy(k=min(5, classes), name="top5")],
        jit_compile=config["jit_compile"],
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
