"""The public builders: shapes, names, saving, and clear errors for bad arguments."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mobilenets as kmn

SMALL = {
    "v1": {"alpha": 0.25},
    "v2": {"alpha": 0.35},
    "v3_small": {"alpha": 0.75},
    "v3_large": {"alpha": 0.75, "minimalistic": True},
    "v4_conv_small": {},
    "v4_conv_medium": {},
    "v4_conv_large": {},
    "v4_hybrid_medium": {},
    "v4_hybrid_large": {},
}


def test_variants_and_builders():
    assert kmn.VARIANTS == (
        "v1", "v2", "v3_small", "v3_large", "v4_conv_small", "v4_conv_medium",
        "v4_conv_large", "v4_hybrid_medium", "v4_hybrid_large",
    )
    assert kmn.build("v3_small", classes=5).output_shape == (None, 5)
    assert kmn.V3Small(classes=5).input_shape == (None, 224, 224, 3)
    assert kmn.V4HybridMedium(include_top=False).input_shape == (None, 256, 256, 3)


@pytest.mark.slow
@pytest.mark.parametrize("variant", kmn.VARIANTS)
def test_every_variant_saves_to_keras_and_loads_back(tmp_path, variant):
    model = kmn.build(variant, input_shape=(64, 64, 3), classes=10, **SMALL[variant])
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = model.predict(images, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(restored.predict(images, verbose=0), expected)
    assert expected.shape == (2, 10)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)


def test_layers_are_named_from_their_block():
    model = kmn.V2(input_shape=(96, 96, 3), include_top=False)
    names = {layer.name for layer in model.layers}
    assert {"preprocessing", "stem_conv", "stem_bn", "block1_dwconv", "block2_expand_conv"} <= names


@pytest.mark.parametrize("pooling, shape", [(None, (None, 3, 3, 576)), ("avg", (None, 576)), ("max", (None, 576))])
def test_feature_extractor_pooling(pooling, shape):
    model = kmn.V3Small(input_shape=(96, 96, 3), include_top=False, pooling=pooling)
    assert model.output_shape == shape


def test_variable_input_size_and_grayscale():
    model = kmn.V2(input_shape=(None, None, 1), alpha=0.35, include_top=False)
    for size in (64, 97):
        out = model.predict(np.zeros((1, size, size, 1), "float32"), verbose=0)
        assert out.shape[-1] == 1280


def test_input_tensor():
    image = keras.Input((80, 80, 3))
    model = kmn.V4ConvSmall(input_tensor=image, classes=3)
    assert model.inputs[0] is image
    assert model.output_shape == (None, 3)


def test_preprocessing_takes_rgb_0_to_255():
    with_pre = kmn.V2(input_shape=(64, 64, 3), alpha=0.35)
    without = kmn.V2(input_shape=(64, 64, 3), alpha=0.35, include_preprocessing=False)
    without.set_weights(with_pre.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        with_pre.predict(images, verbose=0), without.predict(images / 127.5 - 1, verbose=0), atol=1e-6
    )


BAD_ARGUMENTS = [
    ("v1", {"alpha": 0.0}, "alpha"),
    ("v2", {"alpha": 5}, "alpha"),
    ("v3_small", {"alpha": "big"}, "alpha"),
    ("v1", {"depth_multiplier": 0}, "depth_multiplier"),
    ("v2", {"input_shape": (31, 64, 3)}, "input_shape"),
    ("v2", {"input_shape": (64, 64, 4)}, "input_shape"),
    ("v2", {"input_shape": (64, 64)}, "input_shape"),
    ("v4_hybrid_medium", {"input_shape": (None, None, 3)}, "input_shape"),
    ("v3_small", {"weights": "imagenet", "input_shape": (224, 224, 1)}, "input_shape"),
    ("v3_small", {"weights": "imagenet", "alpha": 0.5}, "alpha"),
    ("v3_large", {"weights": "imagenet", "alpha": 0.75, "minimalistic": True}, "alpha"),
    ("v2", {"weights": "imagenet", "alpha": 0.6}, "alpha"),
    ("v1", {"weights": "imagenet", "depth_multiplier": 2}, "depth_multiplier"),
    ("v3_large", {"weights": "imagenet", "classes": 10}, "classes"),
    ("v4_conv_small", {"weights": "imagenet", "classes": 10}, "classes"),
    ("v3_small", {"classes": 0}, "classes"),
    ("v3_small", {"pooling": "sum"}, "pooling"),
    ("v3_small", {"dropout_rate": 1.5}, "dropout_rate"),
    ("v3_small", {"minimalistic": "yes"}, "minimalistic"),
    ("v4_conv_small", {"alpha": 0.5}, "alpha"),
    ("v3_small", {"weights": "missing.h5"}, "weights"),
    ("v3_small", {"weights": "model.pth"}, "weights"),
    ("v3_small", {"weights": 3}, "weights"),
]


@pytest.mark.parametrize("variant, kwargs, argument", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(variant, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        kmn.build(variant, **kwargs)


def test_unknown_variant_lists_the_variants():
    with pytest.raises(ValueError, match="v3_small"):
        kmn.build("v5")


def test_imagenet_file_names_are_keras_applications_files():
    v1 = kmn.weights.keras_applications_file("v1", alpha=0.25, include_top=False, size=128)
    assert v1[1].endswith("/mobilenet/mobilenet_2_5_128_tf_no_top.h5")
    v2 = kmn.weights.keras_applications_file("v2", alpha=1.4, include_top=True, size=224)
    assert v2[1].endswith("/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.4_224.h5")
    name, url, md5 = kmn.weights.keras_applications_file(
        "v3", alpha=1.0, include_top=True, size=224, model_type="small", minimalistic=True
    )
    assert name == "weights_mobilenet_v3_small_minimalistic_224_1.0_float.h5"
    assert url == "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/" + name
    assert md5 == "99cd97fb2fcdad2bf028eb838de69e37"


@pytest.mark.slow
def test_weights_imagenet_reads_keras_cache(tmp_path):
    """weights="imagenet" goes through keras.utils.get_file: a file already in Keras's
    cache under the published name is used as it is (no network needed)."""
    script = f"""
import keras, numpy as np, keras_mobilenets as kmn
reference = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
reference.save({str(tmp_path / "cache" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")!r})
ours = kmn.V2(input_shape=(96, 96, 3), alpha=0.35, weights="imagenet")
x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
np.testing.assert_allclose(ours.predict(x, verbose=0), reference.predict(x / 127.5 - 1, verbose=0), atol=1e-5)
print("loaded from cache")
"""
    (tmp_path / "cache" / "models").mkdir(parents=True)
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded from cache" in result.stdout


def test_profile_command_line():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_mobilenets.app.cli", "profile", "v3_small", "--json"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"macs": 56510400' in result.stdout
