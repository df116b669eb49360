"""ImageNet class names, and `decode_predictions` for models with `weights="imagenet"`.

imagenet_classes.tsv holds the 1000 ILSVRC-2012 classes in the standard index
order (0 = n01440764 tench, ..., 999 = n15075141 toilet tissue): WordNet id,
tab, the synset's lemmas. It was made from timm 1.0.31's wheel on PyPI
(Apache-2.0): timm/data/_info/imagenet_synsets.txt gives the ids in order,
imagenet_synset_to_lemma.txt their lemmas. Shipped so that no download is needed.
"""
import functools
import importlib.resources

import numpy as np

CLASSES = 1000


@functools.lru_cache(maxsize=None)
def class_names():
    """[(WordNet id, name)] for the 1000 ImageNet classes in index order; the name is the
    first lemma with spaces as underscores, as keras.applications names them ("great_white_shark")."""
    text = importlib.resources.files("keras_mobilenets").joinpath("imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line]
    return tuple((wordnet_id, lemmas.split(",")[0].strip().replace(" ", "_")) for wordnet_id, lemmas in rows)


def decode_predictions(predictions, top=5):
    """The `top` ImageNet classes of each image, best first, as keras.applications gives them.

    Args:
        predictions: scores of a 1000-class ImageNet model, shape (images, 1000)
            (a NumPy array, tensor or nested list): probabilities, or logits
            (then the scores are logits too). One image of shape (1000,) is
            taken as a batch of one.
        top: how many classes per image, from 1 to 1000. Default 5.

    Returns:
        A list with one list per image of `top` tuples (WordNet id, class name,
        score), e.g. ("n01440764", "tench", 0.93).

    Raises:
        ValueError: predictions not of shape (images, 1000), or a bad `top`.
    """
    scores = np.asarray(predictions)
    if scores.ndim == 1:
        scores = scores[None]
    if scores.ndim != 2 or scores.shape[1] != CLASSES:
        raise ValueError(f"predictions: must be ImageNet scores of shape (images, {CLASSES}), got shape "
                         f"{scores.shape}; decode_predictions names the classes of weights='imagenet' models "
                         "with include_top=True")
    if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or not 1 <= top <= CLASSES:
        raise ValueError(f"top: must be an integer from 1 to {CLASSES}, got {top!r}")
    names = class_names()
    best = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [[(*names[index], float(row[index])) for index in indices] for row, indices in zip(scores, best)]
