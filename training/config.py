"""`TrainConfig`: every training setting, with its type, default and help text, in one place.

It is what `fit(**settings)` validates, what a run's config.json holds, and
what the `train` and `pipeline` commands parse into: their options are made
from these fields (`add_arguments`), so a setting is named once, here.

This module imports no TensorFlow: `keras-mobilenets --help` builds its
options from it.
"""
import argparse
import dataclasses
import os
import typing

OPTIMIZERS = ("sgd", "adamw")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")
VERBOSITY = ("auto", 0, 1, 2)


def _setting(default, help, *, shown=None, choices=None, resumable=False, parse=None):
    """A field with its help text; `shown`: the default as the help states it (when None means
    "worked out"); `resumable`: may change between a kill and the re-run without changing what
    is trained; `parse`: how the command line turns text into the value."""
    metadata = {"help": help, "shown": shown, "choices": choices, "resumable": resumable, "parse": parse}
    return dataclasses.field(default=default, metadata=metadata)


def _number_or_word(text):
    """A number where the text is one (bn_momentum 0.9, verbose 1), else the word (auto, keep)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of one training run (the model and the data are fit's own arguments)."""

    epochs: int = _setting(5, "training epochs; more on a finished run extend it")
    batch_size: int = _setting(64, "one worker's batch (its devices share it); the global batch is this x workers")
    image_size: typing.Optional[int] = _setting(
        None, "input size in pixels", shown="a built model's input size, else 224")
    alpha: typing.Optional[float] = _setting(None, "width multiplier of a variant given by name, V1-V3",
                                             shown="the variant's, 1.0")
    minimalistic: bool = _setting(False, "V3 without squeeze-excite, hard-swish and 5x5 kernels")
    seed: int = _setting(0, "seed of the data split, initialization and augmentation")
    optimizer: str = _setting("sgd", "sgd (momentum, Nesterov) or adamw", choices=OPTIMIZERS)
    learning_rate: typing.Optional[float] = _setting(
        None, "peak learning rate", shown="0.1 x batch / 256 for sgd, 1e-3 for adamw")
    momentum: float = _setting(0.9, "SGD momentum")
    weight_decay: typing.Optional[float] = _setting(None, "weight decay", shown="4e-5 for sgd, 0.05 for adamw")
    warmup_epochs: int = _setting(1, "epochs of linear learning-rate warm-up before the cosine decay")
    label_smoothing: float = _setting(0.1, "label smoothing of the cross-entropy loss")
    ema: bool = _setting(False, "keep an exponential moving average of the weights (validated and saved)")
    ema_momentum: float = _setting(0.999, "EMA momentum")
    bn_momentum: typing.Union[str, float] = _setting(
        "auto", "BatchNorm momentum: auto (the statistics settle within a tenth of an epoch, see "
        "settle_batch_norm), keep (the model's) or a number", parse=_number_or_word)
    mixed_precision: typing.Optional[str] = _setting(
        None, "mixed-precision policy", shown="float32 throughout", choices=MIXED_PRECISION)
    jit_compile: bool = _setting(False, "compile the training step with XLA (slower on CPU)", resumable=True)
    strategy: str = _setting("default", "tf.distribute strategy", choices=STRATEGIES, resumable=True)
    weights: typing.Optional[str] = _setting(
        None, "start the backbone from 'imagenet' or a weights file", shown="random")
    init_from: typing.Optional[str] = _setting(
        None, "start from another run directory's model.keras", shown="none")
    freeze_epochs: int = _setting(0, "first epochs with the backbone frozen (transfer learning)")
    fine_tune_learning_rate: typing.Optional[float] = _setting(
        None, "peak learning rate after the frozen epochs", shown="learning rate / 10")
    flip: bool = _setting(True, "random horizontal flips (turn off for text, digits, ...)")
    min_crop_area: float = _setting(0.25, "smallest random crop, as a fraction of the image")
    validation_fraction: float = _setting(
        0.1, "share of each class held out for validation, where the source has no such split")
    test_fraction: float = _setting(0.1, "share of each class held out for testing, where the source has no such split")
    data_dir: typing.Optional[str] = _setting(None, "TFDS data directory", shown="TFDS's", resumable=True)
    download: bool = _setting(False, "let TFDS download the data set", resumable=True)
    keep_checkpoints: int = _setting(3, "epoch checkpoints kept in the run directory", resumable=True)
    verbose: typing.Union[str, int] = _setting("auto", "Keras progress output: auto, 0, 1 or 2",
                                               choices=VERBOSITY, resumable=True, parse=_number_or_word)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, os.PathLike):  # weights, init_from, data_dir: a path is written down as text
                object.__setattr__(self, field.name, os.fspath(value))
            elif type(value) is int and float in _allowed_types(field) and int not in _allowed_types(field):
                object.__setattr__(self, field.name, float(value))  # learning_rate=1 is 1.0 in config.json
            _check_type(field, getattr(self, field.name))
        check = _check  # short: one line per rule
        check(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        check(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        check(self.image_size is None or self.image_size >= 1, "image_size",
              f"must be a positive number of pixels, got {self.image_size}")
        check(self.alpha is None or self.alpha > 0, "alpha", f"must be positive, got {self.alpha}")
        check(self.learning_rate is None or self.learning_rate > 0, "learning_rate",
              f"must be positive, got {self.learning_rate}")
        check(self.fine_tune_learning_rate is None or self.fine_tune_learning_rate > 0, "fine_tune_learning_rate",
              f"must be positive, got {self.fine_tune_learning_rate}")
        check(self.weight_decay is None or self.weight_decay >= 0, "weight_decay",
              f"must be 0 or more, got {self.weight_decay}")
        check(self.warmup_epochs >= 0, "warmup_epochs", f"must be 0 or more, got {self.warmup_epochs}")
        check(0 <= self.label_smoothing < 1, "label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        for name in ("momentum", "ema_momentum"):
            check(0 <= getattr(self, name) < 1, name, f"must be in [0, 1), got {getattr(self, name)}")
        check(self.bn_momentum in ("auto", "keep") or (not isinstance(self.bn_momentum, str)
                                                        and 0 < self.bn_momentum < 1),
              "bn_momentum", f"must be 'auto', 'keep' or a number in (0, 1), got {self.bn_momentum!r}")
        check(0 <= self.freeze_epochs <= self.epochs, "freeze_epochs",
              f"must be from 0 to epochs ({self.epochs}), got {self.freeze_epochs}")
        check(self.weights is None or self.init_from is None, "weights", "give weights or init_from, not both")
        check(0 < self.min_crop_area <= 1, "min_crop_area", f"must be in (0, 1], got {self.min_crop_area}")
        for name in ("validation_fraction", "test_fraction"):
            check(0 <= getattr(self, name) < 1, name, f"must be in [0, 1), got {getattr(self, name)}")
        check(self.validation_fraction + self.test_fraction < 1, "validation_fraction + test_fraction",
              f"must leave some data to train on, got {self.validation_fraction} + {self.test_fraction}")
        check(self.keep_checkpoints >= 1, "keep_checkpoints",
              f"must be at least 1 (resuming needs the last one), got {self.keep_checkpoints}")

    @classmethod
    def from_settings(cls, **settings):
        """A TrainConfig from keyword settings; an unknown name is refused with the allowed ones."""
        unknown = sorted(set(settings) - set(NAMES))
        if unknown:
            raise TypeError(f"unknown training setting(s) {', '.join(unknown)}; the settings are: {', '.join(NAMES)}")
        return cls(**settings)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        return dataclasses.asdict(self)


FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}
NAMES = tuple(FIELDS)
# The settings that decide what a run trains (a change to one makes it another run).
TRAINED_BY = tuple(name for name, field in FIELDS.items() if not field.metadata["resumable"])


def _check(condition, name, message):
    if not condition:
        raise ValueError(f"{name}: {message}")


def _allowed_types(field):
    hints = typing.get_type_hints(TrainConfig)[field.name]
    return typing.get_args(hints) if typing.get_origin(hints) is typing.Union else (hints,)


def _check_type(field, value):
    choices = field.metadata["choices"]
    if choices is not None:
        allowed = [*choices, *([None] if field.default is None else [])]
        _check(any(value == choice and type(value) is type(choice) for choice in allowed), field.name,
               f"unknown {value!r}; choose one of {', '.join(map(repr, allowed))}")
        return
    types = _allowed_types(field)
    ok = any(isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
             or (kind is float and isinstance(value, int) and not isinstance(value, bool))
             for kind in types)
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in types)
    _check(ok, field.name, f"must be {names}, got {value!r}")


def add_arguments(parser, *, shown=None):
    """Adds an option per setting (`--batch-size` for batch_size), with its help and default.

    Every option defaults to None, meaning "not given": `given(args)` picks the
    given ones, so the defaults stay those of TrainConfig (or the caller's,
    whose wording `shown` {name: text} puts in the help).
    """
    for name, field in FIELDS.items():
        meta = field.metadata
        default = (shown or {}).get(name) or meta["shown"] or _shown(field.default)
        options = {"dest": name, "default": None, "help": f"{meta['help']} (default: {default})"}
        kinds = [kind for kind in _allowed_types(field) if kind is not type(None)]
        if kinds == [bool]:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = meta["parse"] or kinds[0]
            if meta["choices"] is not None:
                options["choices"] = meta["choices"]
            else:
                options["metavar"] = name.upper()
        parser.add_argument(f"--{name.replace('_', '-')}", **options)


def _shown(value):
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


def given(args):
    """The settings given on the command line (those not None) as {name: value}."""
    return {name: getattr(args, name) for name in NAMES if getattr(args, name) is not None}
