"""Data sources and the input pipeline.

`load(source, image_size=...)` gives unbatched train / validation / test
datasets of `(float32 RGB image in 0..255, int32 label)`, every image already
square at `image_size`: train images keep the whole short side (augmentation
happens in `pipeline`), evaluation images are center-cropped the usual
ImageNet way. Normalization stays inside the models.

Sources: "digits" (scikit-learn's bundled handwritten digits, the offline
default), "tfds:NAME" (TensorFlow Datasets) and a folder of images with one
sub-folder per class (optionally inside train / validation / test folders).
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from keras_mobilenets.training import folders
from keras_mobilenets.training.split import split_indices

AUTOTUNE = tf.data.AUTOTUNE
EVAL_CROP_FRACTION = 0.875  # resize to size / 0.875, then center-crop `size` (ImageNet evaluation)
CACHE_LIMIT_BYTES = 512 << 20  # cache decoded images in memory below this size


@dataclasses.dataclass
class Splits:
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list
    skipped: list = dataclasses.field(default_factory=list)  # unreadable files left out


def load(source="digits", *, image_size, seed=0, data_dir=None, download=False,
         validation_fraction=0.1, test_fraction=0.1):
    """The three splits of `source`, deterministic for a given seed.

    Folders and digits are split per class at random (by `seed`); a TFDS data
    set keeps its own validation / test splits and carves missing ones from the
    front of its (already shuffled) train split, the same for every seed.
    """
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"image_size: must be a positive integer, got {image_size!r}")
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{name}: must be in [0, 1), got {fraction!r}")
    if validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction + test_fraction: must leave some data to train on, "
                         f"got {validation_fraction} + {test_fraction}")
    fractions = {"validation": validation_fraction, "test": test_fraction}
    source = str(source)
    if source == "digits":
        raw, class_names, skipped = _digits(seed, fractions), [str(d) for d in range(10)], []
    elif source.startswith("tfds:"):
        raw, class_names = _tfds(source[len("tfds:"):], data_dir, download, fractions)
        skipped = []
    elif os.path.isdir(source):
        raw, class_names, skipped = folders.load(source, seed, fractions)
    else:
        raise ValueError(f"dataset: {source!r} is not 'digits', 'tfds:NAME' or an existing folder")
    return Splits(
        train=raw["train"].map(lambda x, y: (square(x, image_size, 1.0), y), num_parallel_calls=AUTOTUNE),
        validation=raw["validation"].map(
            lambda x, y: (square(x, image_size, EVAL_CROP_FRACTION), y), num_parallel_calls=AUTOTUNE),
        test=raw["test"].map(
            lambda x, y: (square(x, image_size, EVAL_CROP_FRACTION), y), num_parallel_calls=AUTOTUNE),
        class_names=class_names,
        skipped=skipped,
    )


def examples(dataset, argument, *, image_size, training):
    """A tf.data set of (image HxWx3 in 0..255, integer label) given in Python, as `load` gives a split.

    A batched set is unbatched; grayscale images become RGB; images are made
    square at `image_size` as `load` does (whole short side for training,
    center crop for evaluation). `argument` names the set in errors.
    """
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(f"{argument}: must give (image, label) pairs, got elements {spec}; "
                         "with TFDS, load it with as_supervised=True")
    image, label = spec
    if image.shape.rank == 4 and label.shape.rank == 1:
        dataset = dataset.unbatch()
        image, label = dataset.element_spec
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3, None):
        raise ValueError(f"{argument}: images must be HxWx3 (or HxWx1), got shape {image.shape}")
    if label.shape.rank != 0 or not label.dtype.is_integer:
        raise ValueError(f"{argument}: labels must be integer class indices, one per image (not one-hot), "
                         f"got {label.dtype.name} of shape {label.shape}")
    crop = 1.0 if training else EVAL_CROP_FRACTION
    return dataset.map(lambda x, y: (square(_rgb(x), image_size, crop), tf.cast(y, tf.int32)),
                       num_parallel_calls=AUTOTUNE)


def pipeline(dataset, batch_size, *, training, flip=True, min_crop_area=0.25, one_hot_classes=None):
    """Batches an unbatched split; for training, shuffles and augments (random-resized crop, flip).

    With `one_hot_classes`, labels come one-hot over that many classes (what
    label smoothing needs) instead of as class indices.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    if one_hot_classes is not None and (
            not isinstance(one_hot_classes, int) or isinstance(one_hot_classes, bool) or one_hot_classes < 1):
        raise ValueError(f"one_hot_classes: must be a positive integer or None, got {one_hot_classes!r}")
    if not 0 < min_crop_area <= 1:
        raise ValueError(f"min_crop_area: must be in (0, 1], got {min_crop_area!r}")
    height, width, channels = dataset.element_spec[0].shape
    count = int(dataset.cardinality())
    if count >= 0 and count * height * width * channels * 4 <= CACHE_LIMIT_BYTES:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(count if 0 < count <= 10_000 else 10_000, reshuffle_each_iteration=True)
        dataset = dataset.map(
            lambda x, y: (augment(x, flip=flip, min_crop_area=min_crop_area), y),
            num_parallel_calls=AUTOTUNE,
        )
    dataset = dataset.batch(batch_size)
    if one_hot_classes is not None:
        dataset = dataset.map(lambda x, y: (x, tf.one_hot(y, one_hot_classes)), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def count(dataset):
    """Number of examples, counting by iteration only where tf.data does not know it."""
    known = int(dataset.cardinality())
    return known if known >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))


def square(image, size, crop_fraction):
    """Resizes the short side to size / crop_fraction and center-crops a size x size square."""
    image = tf.cast(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / crop_fraction / tf.reduce_min(shape)
    resized = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, resized, antialias=True)
    top, left = (resized[0] - size) // 2, (resized[1] - size) // 2
    image = image[top:top + size, left:left + size]
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [size, size, 3])


def augment(image, *, flip, min_crop_area):
    """Inception-style random-resized crop back to the same size, then a random horizontal flip."""
    size = image.shape[:2]
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(min_crop_area, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.image.resize(tf.slice(image, begin, crop_size), size)
    if flip:
        image = tf.image.random_flip_left_right(image)
    return tf.clip_by_value(image, 0.0, 255.0)


def _digits(seed, fractions):
    """scikit-learn's 1797 8x8 handwritten digits (ink 0..16) as white-on-black RGB 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.repeat((digits.images * (255.0 / 16.0)).astype(np.float32)[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    return {
        name: tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))
        for name, indices in split_indices(labels, seed, fractions).items()
    }


def _tfds(name, data_dir, download, fractions):
    """A TFDS data set's splits; a missing validation or test split is carved from the front of train."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"dataset: TFDS has no data set named {name!r}; "
                         "see https://www.tensorflow.org/datasets/catalog") from None
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2 or not isinstance(info.features[keys[1]], tfds.features.ClassLabel):
        raise ValueError(f"dataset: tfds:{name} has no (image, class label) pair to train a classifier on")
    # TFDS's USE_CODE mocks know no split names; every data set has a train split.
    available = set(info.splits) or {"train"}
    if "train" not in available:
        raise ValueError(f"dataset: tfds:{name} has no 'train' split (it has {sorted(available)})")
    carved = [part for part in ("test", "validation") if part not in available]
    split_names, start = {}, 0
    for part in carved:
        end = start + int(round(fractions[part] * 100))
        split_names[part] = f"train[{start}%:{end}%]"
        start = end
    split_names["train"] = f"train[{start}%:]"
    for part in ("validation", "test"):
        split_names.setdefault(part, part)
    try:
        datasets = tfds.load(
            name, split=[split_names[p] for p in ("train", "validation", "test")], data_dir=data_dir,
            download=download, as_supervised=True, shuffle_files=False,
        )
    except (AssertionError, OSError) as error:
        where = data_dir or tfds.core.constants.DATA_DIR
        hint = ("the download failed" if download
                else "pass download=True (--download) on a machine with network")
        raise FileNotFoundError(
            f"dataset: tfds:{name} is not prepared in {where} and {hint}; or point data_dir "
            f"(--data-dir) at a folder that holds it. ({type(error).__name__}: {error})"
        ) from None
    raw = {
        part: dataset.map(lambda x, y: (_rgb(x), tf.cast(y, tf.int32)), num_parallel_calls=AUTOTUNE)
        for part, dataset in zip(("train", "validation", "test"), datasets)
    }
    return raw, list(info.features[keys[1]].names)


def _rgb(image):
    """Grayscale (H, W, 1) images become RGB; RGB stays."""
    return tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image
