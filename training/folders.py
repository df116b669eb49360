"""A folder of images as a data source: root/LABEL/*.jpg or root/SPLIT/LABEL/*.jpg.

Every file is decoded once up front (cheaply, at reduced scale) so that a
corrupt image is left out and counted here instead of stopping training
half-way through an epoch.
"""
import logging
import pathlib

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from keras_mobilenets.training.split import split_indices

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")  # what tf.io.decode_image reads
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")
SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}

log = logging.getLogger(__name__)


def load(root, seed, fractions):
    """Returns ({split: dataset of (encoded image -> uint8 RGB, label)}, class_names, skipped files)."""
    root = pathlib.Path(root)
    subfolders = sorted(path.name for path in root.iterdir() if path.is_dir())
    split_layout = "train" in subfolders and set(subfolders) <= {n for names in SPLIT_FOLDERS.values() for n in names}
    if split_layout:
        given = {}
        for split, names in SPLIT_FOLDERS.items():
            folder = next((root / n for n in names if (root / n).is_dir()), None)
            if folder is not None:
                given[split] = _class_files(folder)
        class_names = sorted(given["train"])
        for split, files in given.items():
            unknown = sorted(set(files) - set(class_names))
            if unknown:
                raise ValueError(f"dataset: {root / split} has classes {unknown} that the train folder lacks")
    else:
        given = {"train": _class_files(root)}
        class_names = sorted(given["train"])

    paths, labels, skipped = {}, {}, []
    for split, files in given.items():
        items = [(path, class_names.index(name)) for name in sorted(files) for path in files[name]]
        good = []
        for path, label in tqdm(items, desc=f"checking {split} images", unit="img", disable=len(items) < 1000):
            if _readable(path):
                good.append((path, label))
            else:
                skipped.append(str(path))
        paths[split] = np.array([str(path) for path, _ in good])
        labels[split] = np.array([label for _, label in good], dtype=np.int32)
    if skipped:
        log.warning("left out %d file(s) that are not images TensorFlow reads (%s), e.g. %s",
                    len(skipped), ", ".join(EXTENSIONS), skipped[0])

    carve = {split: fractions[split] for split in ("validation", "test") if split not in given}
    if carve:
        indices = split_indices(labels["train"], seed, {"validation": 0.0, "test": 0.0, **carve})
        train_paths, train_labels = paths["train"], labels["train"]
        for split in ("train", *carve):
            paths[split], labels[split] = train_paths[indices[split]], train_labels[indices[split]]
    for split in ("train", "validation", "test"):
        if len(paths[split]) == 0 and (split == "train" or fractions[split] > 0):
            raise ValueError(f"dataset: the {split} split of {root} is empty "
                             f"({sum(len(p) for p in paths.values())} readable images in all); add images")
    datasets = {
        split: tf.data.Dataset.from_tensor_slices((paths[split], labels[split])).map(
            lambda path, label: (_decode(path), label), num_parallel_calls=tf.data.AUTOTUNE)
        for split in ("train", "validation", "test")
    }
    return datasets, class_names, skipped


def _class_files(folder):
    """{class name: image files} for the sub-folders of `folder` (searched recursively)."""
    classes = {}
    for sub in sorted(path for path in folder.iterdir() if path.is_dir()):
        classes[sub.name] = sorted(p for p in sub.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not classes:
        loose = any(p.suffix.lower() in EXTENSIONS for p in folder.iterdir())
        raise ValueError(
            f"dataset: {folder} has no class sub-folders"
            + (" (its images must go into one sub-folder per class)" if loose else " (it is empty)")
            + "; expected ROOT/LABEL/*.jpg or ROOT/train/LABEL/*.jpg"
        )
    empty = [name for name, files in classes.items()
             if not any(path.suffix.lower() in EXTENSIONS for path in files)]
    if empty:
        raise ValueError(f"dataset: class folder(s) {empty} in {folder} hold no images "
                         f"(allowed: {', '.join(EXTENSIONS)})")
    return classes


def _readable(path):
    """True when the file decodes as an image TensorFlow can read (other files are reported, not used)."""
    if path.suffix.lower() not in EXTENSIONS:
        return False
    try:
        with Image.open(path) as image:
            if image.format not in FORMATS:
                return False
            image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, still reads every byte
            image.load()
        return True
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return False


def _decode(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])
