"""`evaluate`: top-1, top-5 and a confusion matrix of a trained model on a split."""
import pathlib

import keras
import numpy as np
from tqdm import tqdm

from keras_mobilenets.files import save_atomically
from keras_mobilenets.training import data, runs

SPLITS = ("train", "validation", "test")


def evaluate(model_or_run, *, dataset=None, split="test", batch_size=64, data_dir=None, download=False):
    """Top-1, top-5 and a confusion matrix of a trained Keras model on a data set split.

    Writes the confusion matrix as PNG (and the figures as JSON) next to the model.

    Args:
        model_or_run: a run directory (its model.keras, on the run's own
            splits) or a .keras file.
        dataset: the data source ("digits", "tfds:NAME" or a folder); None
            (the default) takes the run's.
        split: "test" (the default), "validation" or "train".
        batch_size: Default 64.
        data_dir: TFDS data directory (None: TFDS's). Default None.
        download: let TFDS download the data set. Default False.

    Returns:
        A dict: "model", "dataset", "split", "count", "top1", "top5", "top_k"
        and "confusion_matrix_png".

    Raises:
        FileNotFoundError: a path or model file that does not exist.
        ValueError: an unknown split, a file that is no .keras, a model outside
            a run without `dataset`, a data set with another number of classes,
            or an empty split.
    """
    if split not in SPLITS:
        raise ValueError(f"split: unknown {split!r}; choose one of {', '.join(SPLITS)}")
    path = pathlib.Path(model_or_run)
    if not path.exists():
        raise FileNotFoundError(f"model: {path} does not exist; give a run directory or a .keras file")
    if path.is_dir():
        config, model_path, out_dir, stem = runs.read_config(path), path / runs.MODEL, path, ""
    elif path.suffix == ".keras":
        sibling = path.parent / runs.CONFIG
        config = runs.read_config(path.parent) if sibling.is_file() else {}
        model_path, out_dir, stem = path, path.parent, f"{path.stem}_"
    else:
        raise ValueError(f"model: {path} is neither a run directory nor a .keras file")
    if not model_path.is_file():
        raise FileNotFoundError(f"model: {model_path} does not exist (has the run finished an epoch?)")
    own_data = bool(config) and dataset in (None, config.get("dataset"))
    if dataset is None and not config:
        raise ValueError("dataset: a model outside a run directory needs --dataset (digits, tfds:NAME or a folder)")

    model = keras.saving.load_model(model_path, compile=False)
    if own_data:  # the run's own data, split exactly as training split it (a tf.data run says it cannot)
        splits = runs.Run(out_dir).splits()
        dataset = config["dataset"]
    else:
        splits = data.load(dataset, image_size=model.inputs[0].shape[1], data_dir=data_dir, download=download)
    classes = len(splits.class_names)
    if model.outputs[0].shape[-1] != classes:
        raise ValueError(f"dataset: {dataset} has {classes} classes but the model predicts "
                         f"{model.outputs[0].shape[-1]}")
    examples = getattr(splits, split)
    total = data.count(examples)
    if total == 0:
        raise ValueError(f"split: the {split} split of {dataset} is empty")

    confusion = np.zeros((classes, classes), dtype=np.int64)
    top_k = min(5, classes)
    in_top_k = 0
    with tqdm(total=total, desc=f"evaluating {split}", unit="img") as progress:
        for images, labels in data.pipeline(examples, batch_size, training=False):
            scores = np.asarray(model.predict_on_batch(images))
            labels = labels.numpy()
            np.add.at(confusion, (labels, scores.argmax(axis=-1)), 1)
            best = np.argsort(-scores, axis=-1)[:, :top_k]
            in_top_k += int((best == labels[:, None]).any(axis=-1).sum())
            progress.update(len(labels))

    png = out_dir / f"{stem}confusion_{split}.png"
    _plot_confusion(confusion, splits.class_names, png, title=f"{dataset} {split}")
    result = {
        "model": str(model_path), "dataset": str(dataset), "split": split, "count": total,
        "top1": float(np.trace(confusion) / total), "top5": in_top_k / total, "top_k": top_k,
        "confusion_matrix_png": str(png),
    }
    runs.write_json(out_dir / f"{stem}evaluation_{split}.json", {**result, "confusion_matrix": confusion.tolist()})
    return result


def _plot_confusion(confusion, class_names, path, *, title):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    size = min(4 + 0.3 * len(class_names), 30)
    figure, axes = pyplot.subplots(figsize=(size, size))
    axes.imshow(confusion, cmap="Blues")
    if len(class_names) <= 50:  # beyond that, names are unreadable
        ticks = range(len(class_names))
        axes.set_xticks(ticks, class_names, rotation=90)
        axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    save_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
    pyplot.close(figure)
