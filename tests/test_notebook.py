"""The notebook API: public names, decode_predictions, QAT of a model in memory, and the README's
notebook section run as written."""
import inspect
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import keras_mobilenets as kmn

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
NOTEBOOK_HEADING = "## Notebook: from a model to an int8 .tflite"
SIZE = 32


@pytest.mark.parametrize("package", ["keras_mobilenets", "keras_mobilenets.training", "keras_mobilenets.tflite"])
def test_every_public_name_resolves_and_is_documented(package):
    import importlib

    module = importlib.import_module(package)
    assert module.__all__ and set(module.__all__) <= set(dir(module))
    undocumented = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.ismodule(value) or inspect.isclass(value) or callable(value):
            documented = bool((value.__doc__ or "").strip())  # a class's own docstring, not inherited
        else:  # a constant (VARIANTS, BUILDERS): the package's docstring says what it is
            documented = f"`{name}`" in module.__doc__
        if not documented:
            undocumented.append(name)
    assert not undocumented, f"{package}: no docstring for {undocumented}"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getattr(module, "nothing")


def test_importing_the_packages_and_listing_names_starts_no_tensorflow():
    script = ("import sys, keras_mobilenets as kmn, keras_mobilenets.training, keras_mobilenets.tflite\n"
              "names = dir(kmn) + dir(kmn.training) + dir(kmn.tflite)\n"
              "assert 'decode_predictions' in names and 'quantization_aware' in names and 'convert' in names\n"
              "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "False"]


def test_builders_document_every_argument_of_their_signature():
    for name, builder in kmn.BUILDERS.items():
        doc = builder.__doc__
        for argument in inspect.signature(builder).parameters:
            assert f"    {argument}: " in doc, (name, argument)
        assert "Returns:" in doc and "Raises:" in doc, name


def test_decode_predictions_names_the_top_classes_of_a_logit_vector():
    logits = np.full((2, 1000), -3.0, np.float32)
    logits[0, [0, 999, 2]] = [7.0, 5.0, 6.0]  # tench, toilet tissue, great white shark
    logits[1, 1] = 1.0  # goldfish
    decoded = kmn.decode_predictions(logits, top=3)
    assert [[entry[:2] for entry in image] for image in decoded] == [
        [("n01440764", "tench"), ("n01484850", "great_white_shark"), ("n15075141", "toilet_tissue")],
        [("n01443537", "goldfish"), ("n01440764", "tench"), ("n01484850", "great_white_shark")],  # ties: by index
    ]
    assert [score for _, _, score in decoded[0]] == [7.0, 6.0, 5.0]
    assert len(kmn.decode_predictions(logits[0])[0]) == 5  # one image, the default top 5
    assert len({name for _, name in kmn.imagenet.class_names()}) == 998  # "crane" and "maillot" are two classes each


def test_decode_predictions_refuses_what_is_not_imagenet_scores():
    with pytest.raises(ValueError, match=r"shape \(images, 1000\), got shape \(2, 10\)"):
        kmn.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="top: must be an integer from 1 to 1000, got 0"):
        kmn.decode_predictions(np.zeros((1, 1000)), top=0)


def _digits(size=SIZE):
    from keras_mobilenets.training import data

    return data.load("digits", image_size=size)


@pytest.mark.slow
def test_quantization_aware_on_a_model_in_memory_converts_to_one_xnnpack_partition(tmp_path):
    import keras

    from keras_mobilenets.tflite.latency import delegation_report, load_interpreter

    model = kmn.V3Small(alpha=0.35, minimalistic=True, input_shape=(SIZE, SIZE, 3), classes=10)
    model.save(tmp_path / "float.keras")
    model = keras.saving.load_model(tmp_path / "float.keras")  # the record survives a .keras file
    splits = _digits()
    stem_before = model.get_layer("stem_conv").get_weights()[0]
    # An untrained model's BatchNorm statistics are their initial values, which freezing would keep
    # (its output is then uniform and nothing learns): fine-tune with batch statistics.
    qat_model = kmn.training.quantization_aware(model, splits.train.take(256), splits.validation.take(64),
                                                epochs=1, batch_size=64, batch_norm="train", verbose=0)
    stem_after = next(w for w in qat_model.weights if w.name.startswith("stem_conv/kernel")).numpy()
    assert not np.allclose(stem_before, stem_after)  # it fine-tuned
    path = kmn.tflite.convert(qat_model, tmp_path / "qat.tflite", quantization="qat-int8")
    interpreter = load_interpreter(path)
    report = delegation_report(interpreter)
    assert report["partitions"] == 1 and report["ops_outside_delegate"] == {}, report
    result = kmn.tflite.evaluate(path, splits.test.take(32), keras_model=qat_model, progress=False)
    assert result["count"] == 32 and result["agreement_top1"] >= 0.9, result


def test_quantization_aware_says_what_is_wrong_with_its_inputs():
    import keras
    import tensorflow as tf

    model = kmn.V3Small(alpha=0.35, minimalistic=True, input_shape=(SIZE, SIZE, 3), classes=10)
    splits = _digits()
    with pytest.raises(ValueError, match="was not built by a keras_mobilenets builder"):
        kmn.training.quantization_aware(keras.models.clone_model(model), splits.train, epochs=1)
    one_hot = splits.train.map(lambda image, label: (image, tf.one_hot(label, 10)))
    with pytest.raises(ValueError, match="train_data: labels must be integer class indices"):
        kmn.training.quantization_aware(model, one_hot, epochs=1)
    with pytest.raises(ValueError, match="train_data: must be a tf.data.Dataset"):
        kmn.training.quantization_aware(model, np.zeros((4, SIZE, SIZE, 3)), epochs=1)
    backbone = kmn.V3Small(alpha=0.35, input_shape=(SIZE, SIZE, 3), include_top=False, pooling="avg")
    with pytest.raises(ValueError, match="include_top=True"):
        kmn.training.quantization_aware(backbone, splits.train, epochs=1)
    with pytest.raises(ValueError, match="epochs: must be a positive integer, got 0"):
        kmn.training.quantization_aware(model, splits.train, epochs=0)


def test_the_record_of_how_a_model_was_built_rebuilds_it():
    model = kmn.V1(alpha=0.25, depth_multiplier=2, input_shape=(SIZE, SIZE, 3), classes=3, pooling=None,
                   classifier_activation=None, name="mine")
    variant, arguments = kmn.architecture_of(model)
    assert variant == "v1" and arguments["alpha"] == 0.25 and arguments["depth_multiplier"] == 2
    again = kmn.build(variant, **arguments)
    assert [w.shape for w in again.weights] == [w.shape for w in model.weights]
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    clone = kmn.MobileNet.from_config(model.get_config())
    assert kmn.architecture_of(clone) == (variant, arguments)


def notebook_block():
    """The first python code block under the README's notebook heading, as written there."""
    text = README.read_text()
    assert NOTEBOOK_HEADING in text, f"README.md has no {NOTEBOOK_HEADING!r} section"
    section = text.split(NOTEBOOK_HEADING, 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


# Run before the README's block: no network here, so keras.applications-format V2 files (random
# weights, the published names) are placed in a fresh Keras cache, where weights="imagenet" finds
# them as it finds a file downloaded before. MobileNetV2's are not hash-checked (V3's are).
PLACE_IMAGENET_FILES = """
import os
import keras
from keras_mobilenets import weights
for include_top in (True, False):
    name = weights.keras_applications_file("v2", alpha=0.35, include_top=include_top, size=96)[0]
    reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=include_top,
                                               weights=None)
    reference.save(os.path.join(CACHE, "models", name))
"""


@pytest.mark.slow
def test_readme_notebook_section_runs_as_written_and_ends_with_an_int8_file(tmp_path):
    from keras_mobilenets.tflite.latency import delegation_report, load_interpreter

    cache = tmp_path / "keras_cache"
    (cache / "models").mkdir(parents=True)
    script = (f"CACHE = {str(cache)!r}\n" + PLACE_IMAGENET_FILES
              + "import time\nstart = time.perf_counter()\n"
              + f"exec(compile({notebook_block()!r}, 'README.md notebook section', 'exec'), {{}})\n"
              + "print(f'README notebook section: {time.perf_counter() - start:.1f} s')\n")
    env = {**os.environ, "KERAS_HOME": str(cache), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    print(result.stdout.splitlines()[-1])  # the section's wall time (pytest -s shows it)

    path = tmp_path / "digits_int8.tflite"
    interpreter = load_interpreter(path)
    report = delegation_report(interpreter)
    assert report["partitions"] == 1 and report["ops_outside_delegate"] == {}, report
    int8_ops = {op["op_name"] for op in interpreter._get_ops_details()
                if op["op_name"] != "DELEGATE" and {np.dtype(t).name for t in op["result_types"]} == {"int8"}}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= int8_ops, int8_ops
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    images = np.random.default_rng(0).uniform(0, 255, (3, 96, 96, 3)).astype(np.float32)
    for image in images:
        interpreter.set_tensor(source["index"], image[None])
        interpreter.invoke()
        scores = interpreter.get_tensor(target["index"])[0]
        assert scores.shape == (10,) and scores.min() >= 0 and abs(scores.sum() - 1) < 1e-4, scores
