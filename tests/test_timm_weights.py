"""timm's MobileNetV4 checkpoints convert exactly: the fixtures' logits, .keras, TFLite, bad input.

The fixtures (../shared/fixtures/timm) are seeded random-weight timm checkpoints,
float16 and split in parts, with an input and timm's logits for it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_mobilenets as kmn
from keras_mobilenets import timm_weights
from keras_mobilenets.builder import IMAGENET_MEAN, IMAGENET_STD

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "timm"
BUILDERS = {"mobilenetv4_conv_small": kmn.V4ConvSmall, "mobilenetv4_hybrid_medium": kmn.V4HybridMedium}


def fixture(name):
    """(checkpoint parts, NHWC images, timm's logits); CI fails loudly when the fixtures are absent."""
    if not FIXTURES.is_dir():
        message = f"timm fixtures not found at {FIXTURES}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    parts = sorted(str(path) for path in FIXTURES.glob(f"{name}.part*.safetensors"))
    io = load_file(str(FIXTURES / f"{name}.io.safetensors"))
    return parts, io["input_nchw"].transpose(0, 2, 3, 1), io["logits"]


def test_missing_fixtures_fail_in_ci(monkeypatch, tmp_path):
    monkeypatch.setitem(globals(), "FIXTURES", tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not found"):
        fixture("mobilenetv4_conv_small")


def build(name, weights=None, **kwargs):
    _, images, _ = fixture(name)
    return BUILDERS[name](input_shape=images.shape[1:], weights=weights, include_preprocessing=False,
                          classifier_activation=None, **kwargs)


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def converted(request):
    """(name, model with the fixture's checkpoint loaded, images, timm's logits)."""
    name = request.param
    parts, images, logits = fixture(name)
    weights = parts[0] if len(parts) == 1 else parts  # one file, or a list of parts
    return name, build(name, weights), images, logits


def top5(logits):
    return np.argsort(-logits, axis=-1)[:, :5]


def test_logits_match_timm(converted):
    _, model, images, logits = converted
    ours = model.predict(images, verbose=0)
    assert np.abs(ours - logits).max() <= 1e-3
    np.testing.assert_array_equal(top5(ours), top5(logits))


@pytest.mark.slow
def test_saves_and_reloads_as_keras(converted, tmp_path):
    _, model, images, _ = converted
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.slow
def test_tflite_float32_matches_timm(converted, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    _, model, images, logits = converted
    path = str(tmp_path / "model.tflite")
    model.export(path, format="litert")
    interpreter = Interpreter(model_path=path)
    (source,), (result,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(source["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], images)
    interpreter.invoke()
    assert np.abs(interpreter.get_tensor(result["index"]) - logits).max() <= 1e-3


def test_without_top_loads_the_features():
    name = "mobilenetv4_conv_small"
    parts, images, _ = fixture(name)
    full = build(name, parts)
    features = build(name, parts, include_top=False)
    expected = keras.Model(full.input, full.get_layer("head_pool").input).predict(images, verbose=0)
    np.testing.assert_allclose(features.predict(images, verbose=0), expected, atol=1e-5)


def test_preprocessing_takes_rgb_0_to_255():
    name = "mobilenetv4_conv_small"
    parts, images, _ = fixture(name)
    rgb = np.random.default_rng(0).uniform(0, 255, images.shape).astype("float32")
    normalized = (rgb / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    with_preprocessing = kmn.V4ConvSmall(input_shape=images.shape[1:], weights=parts,
                                         classifier_activation=None)
    np.testing.assert_allclose(with_preprocessing.predict(rgb, verbose=0),
                               build(name, parts).predict(normalized.astype("float32"), verbose=0), atol=1e-4)


def altered(tmp_path, name, change):
    """A copy of the fixture checkpoint with `change(tensors)` applied, as one file."""
    tensors = timm_weights.read_checkpoint(fixture(name)[0])
    change(tensors)
    path = str(tmp_path / "altered.safetensors")
    save_file(tensors, path)
    return path


def _drop_late_key(tensors):
    del tensors["norm_head.running_var"]


def _add_key(tensors):
    tensors["blocks.2.0.se.conv_reduce.weight"] = np.zeros((8, 64, 1, 1), "float32")


def _narrow_classifier(tensors):
    tensors["classifier.bias"] = tensors["classifier.bias"][:999]


@pytest.mark.parametrize("change, message", [
    (_drop_late_key, "missing keys.*norm_head.running_var"),
    (_add_key, "unexpected keys.*blocks.2.0.se.conv_reduce.weight"),
    (_narrow_classifier, r"do not fit.*classifier.bias \(999,\)"),
])
def test_bad_checkpoint_leaves_model_unchanged(tmp_path, change, message):
    name = "mobilenetv4_conv_small"
    path = altered(tmp_path, name, change)
    model = build(name)
    before = model.get_weights()
    with pytest.raises(ValueError, match=f"(?s){message}"):
        timm_weights.load_timm_checkpoint(model, path)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_checkpoint_of_other_architecture_is_refused():
    model = build("mobilenetv4_conv_small")
    before = model.get_weights()
    with pytest.raises(ValueError, match="another architecture"):
        timm_weights.load_timm_checkpoint(model, fixture("mobilenetv4_hybrid_medium")[0])
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_other_class_count_is_explained():
    with pytest.raises(ValueError, match="classifies 1000 classes"):
        build("mobilenetv4_conv_small", fixture("mobilenetv4_conv_small")[0], classes=10)


@pytest.mark.parametrize("weights", ["model.pth", ["part0.safetensors", "part1.bin"]])
def test_pickle_is_refused(weights):
    with pytest.raises(ValueError, match="pickle|safetensors parts"):
        kmn.V4ConvSmall(weights=weights)
    with pytest.raises(ValueError, match="pickle"):
        timm_weights.load_timm_checkpoint(build("mobilenetv4_conv_small"), weights)


@pytest.mark.slow
def test_weights_imagenet_reads_keras_cache(tmp_path):
    """weights="imagenet" goes through keras.utils.get_file: a checkpoint already in
    Keras's cache under timm's tag is used as it is (here the fixture stands in for it)."""
    parts, images, logits = fixture("mobilenetv4_conv_small")
    (tmp_path / "models").mkdir()
    shutil.copy(parts[0], tmp_path / "models" / f"{timm_weights.IMAGENET_TAGS['v4_conv_small']}.safetensors")
    np.save(tmp_path / "images.npy", images)
    script = f"""
import numpy as np, keras_mobilenets as kmn
model = kmn.V4ConvSmall(weights="imagenet", include_preprocessing=False, classifier_activation=None)
np.save({str(tmp_path / "logits.npy")!r}, model.predict(np.load({str(tmp_path / "images.npy")!r}), verbose=0))
"""
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.abs(np.load(tmp_path / "logits.npy") - logits).max() <= 1e-3


def test_every_v4_variant_has_an_imagenet_checkpoint():
    assert set(timm_weights.IMAGENET_TAGS) == {name for name in kmn.VARIANTS if name.startswith("v4")}
    for variant, tag in timm_weights.IMAGENET_TAGS.items():
        assert tag.startswith("mobilenetv4_" + variant[3:] + ".") and tag.endswith("_in1k")
