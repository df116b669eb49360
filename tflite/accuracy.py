"""Accuracy of a .tflite on a data set split, run by LiteRT as on the phone.

The files hold a batch of one image (mobile runtimes run one at a time), so
the data set is read in batches and each image is invoked on its own; the
Keras model it came from, when given, predicts the same batches, and the
report says how often the two agree.
"""
import numpy as np

from keras_mobilenets.tflite.latency import load_interpreter
from keras_mobilenets.tflite.metadata import read_model


def evaluate(path, dataset, *, keras_model=None, batch_size=32, limit=None, progress=True, per_image=False):
    """Top-1 and top-5 accuracy of a .tflite file on a data set, run by LiteRT as on a phone.

    Args:
        path: the .tflite file (batch 1, as `convert` writes them).
        dataset: unbatched (image H x W x 3 in 0..255, integer label) pairs at
            the file's input size, e.g. a split of `kmn.training.data.load`.
        keras_model: the Keras (or QAT tf_keras) model the file was converted
            from, or None (the default); with it, the result also says how
            often both give the same top-1 class and their largest output difference.
        batch_size: images read (and given to `keras_model`) at a time. Default 32.
        limit: evaluate at most this many images; None (the default): all.
        progress: show a progress bar. Default True.
        per_image: also return, in the data set's order, each image's "label",
            the file's "top_k" classes (best first) and "score" (its top-1
            probability), and with `keras_model` the model's "source_top1" (what
            a report needs for a confusion matrix and a gallery of mistakes).
            Default False.

    Returns:
        A dict: "model", "count", "top1", "top5", "top_k" (5, or fewer classes),
        with `keras_model` "agreement_top1" and "max_abs_difference", and with
        `per_image` "per_image" (a dict of lists).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated file, a file with a batch other than 1, images
            of another size than the file's input, or no images.
    """
    from tqdm import tqdm

    read_model(path)
    interpreter = load_interpreter(path)
    source, = interpreter.get_input_details()
    target, = interpreter.get_output_details()
    classes = int(target["shape"][-1])
    image_shape = tuple(int(size) for size in source["shape"][1:])
    if tuple(source["shape"][:1]) != (1,):
        raise ValueError(f"{path}: expected a batch-1 model, input shape is {list(source['shape'])}")

    correct1 = correct5 = total = agree = 0
    max_difference = 0.0
    kept = {"label": [], "top_k": [], "score": [], **({"source_top1": []} if keras_model is not None else {})}
    bar = tqdm(total=limit, unit="image", desc="evaluate", disable=not progress)
    for images, labels in _batches(dataset, batch_size, limit):
        if images.shape[1:] != image_shape:
            raise ValueError(f"images of shape {images.shape[1:]} for a model that takes {image_shape}: "
                             "load the data at the model's image size")
        outputs = np.stack([_invoke(interpreter, source, target, image) for image in images])
        top5 = np.argsort(-outputs, axis=1)[:, :min(5, classes)]
        correct1 += int(np.sum(top5[:, 0] == labels))
        correct5 += int(np.sum(np.any(top5 == labels[:, None], axis=1)))
        if keras_model is not None:
            expected = np.asarray(keras_model(images, training=False))
            agree += int(np.sum(np.argmax(expected, axis=1) == top5[:, 0]))
            max_difference = max(max_difference, float(np.max(np.abs(expected - outputs))))
            kept["source_top1"] += np.argmax(expected, axis=1).tolist()
        kept["label"] += labels.tolist()
        kept["top_k"] += top5.tolist()
        kept["score"] += [round(float(score), 4) for score in outputs[np.arange(len(labels)), top5[:, 0]]]
        total += len(labels)
        bar.update(len(labels))
    bar.close()
    if total == 0:
        raise ValueError("the data set split is empty: nothing to evaluate")
    # The keys of the training stage's Keras evaluation, so both read alike.
    result = {"model": str(path), "count": total, "top1": correct1 / total, "top5": correct5 / total,
              "top_k": min(5, classes)}
    if keras_model is not None:
        result["agreement_top1"] = agree / total
        result["max_abs_difference"] = max_difference
    if per_image:
        result["per_image"] = kept
    return result


def _batches(dataset, batch_size, limit):
    """(images float32 NxHxWxC, labels int NxC) numpy batches from (image, label) pairs."""
    images, labels = [], []
    for count, (image, label) in enumerate(dataset):
        if limit is not None and count == limit:
            break
        images.append(np.asarray(image, dtype=np.float32))
        labels.append(int(label))
        if len(images) == batch_size:
            yield np.stack(images), np.array(labels)
            images, labels = [], []
    if images:
        yield np.stack(images), np.array(labels)


def _invoke(interpreter, source, target, image):
    """One image through the interpreter; integer tensors are (de)quantized with their own scales."""
    dtype = np.dtype(source["dtype"])
    if dtype.kind != "f":
        scale, zero_point = source["quantization"]
        info = np.iinfo(dtype)
        image = np.clip(np.round(image / scale + zero_point), info.min, info.max)
    interpreter.set_tensor(source["index"], image[None].astype(dtype))
    interpreter.invoke()
    output = interpreter.get_tensor(target["index"])[0]
    if np.dtype(target["dtype"]).kind != "f":
        scale, zero_point = target["quantization"]
        output = (output.astype(np.float32) - zero_point) * scale
    return output.astype(np.float32)
