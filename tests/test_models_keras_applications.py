"""Our V1-V3 load keras.applications weight files and compute the same outputs.

keras.applications' ImageNet files are legacy .h5 files matched layer by layer
in order; here keras.applications models with random weights (batch-norm
statistics randomized too) write such files and ours must load them.
"""
import keras
import numpy as np
import pytest

import keras_mobilenets as kmn

CASES = [
    # (our variant, keras.applications builder, kwargs for both, keras.applications preprocesses inside)
    ("v1", keras.applications.MobileNet, {"alpha": 1.0}, False),
    ("v1", keras.applications.MobileNet, {"alpha": 0.25, "include_top": False, "pooling": "avg"}, False),
    ("v2", keras.applications.MobileNetV2, {"alpha": 1.0}, False),
    ("v2", keras.applications.MobileNetV2, {"alpha": 0.35, "include_top": False}, False),
    ("v3_small", keras.applications.MobileNetV3Small, {"alpha": 1.0}, True),
    ("v3_small", keras.applications.MobileNetV3Small, {"alpha": 0.75, "minimalistic": True}, True),
    ("v3_large", keras.applications.MobileNetV3Large, {"alpha": 1.0}, True),
    ("v3_large", keras.applications.MobileNetV3Large, {"alpha": 1.0, "minimalistic": True, "include_top": False}, True),
]


def randomize(model, rng):
    """Random weights everywhere, batch-norm moving statistics included."""
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = weight.shape
            if "moving_variance" in weight.path:
                values.append(rng.uniform(0.5, 1.5, shape))
            elif "moving_mean" in weight.path or "beta" in weight.path or "bias" in weight.path:
                values.append(rng.normal(0.0, 0.1, shape))
            elif "gamma" in weight.path:
                values.append(rng.uniform(0.8, 1.2, shape))
            else:
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                values.append(rng.normal(0.0, (2.0 / fan_in) ** 0.5, shape))
        layer.set_weights([v.astype("float32") for v in values])


@pytest.mark.slow
@pytest.mark.parametrize("variant, reference_builder, kwargs, reference_preprocesses", CASES,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_loads_keras_applications_h5_and_matches_outputs(
    tmp_path, variant, reference_builder, kwargs, reference_preprocesses
):
    size = 160
    extra = {"include_preprocessing": True} if reference_preprocesses else {}
    reference = reference_builder(
        input_shape=(size, size, 3), weights=None, classifier_activation=None, **kwargs, **extra
    )
    randomize(reference, np.random.default_rng(1))
    weights_file = tmp_path / "reference.h5"
    reference.save(weights_file)  # legacy HDF5, the format of keras.applications' files

    ours = kmn.build(
        variant, input_shape=(size, size, 3), weights=str(weights_file),
        classifier_activation=None, **kwargs,
    )
    images = np.random.default_rng(2).uniform(0, 255, (2, size, size, 3)).astype("float32")
    expected = reference.predict(images if reference_preprocesses else images / 127.5 - 1.0, verbose=0)
    actual = ours.predict(images, verbose=0)
    assert actual.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale)


def test_weights_of_another_architecture_are_refused_and_nothing_is_loaded(tmp_path):
    other = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None)
    weights_file = tmp_path / "v2.h5"
    other.save(weights_file)
    model = kmn.V3Small(input_shape=(96, 96, 3))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="does not fit .*left unchanged"):
        kmn.weights.load_weights_file(model, weights_file)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_same_layer_count_but_wrong_shapes_leaves_the_model_unchanged(tmp_path):
    # alpha 0.75 and 1.0 have the same layers in the same order, with other shapes:
    # Keras loads such files layer by layer, so a failure half-way must be undone.
    wider = kmn.V3Small(input_shape=(96, 96, 3), alpha=1.0)
    weights_file = tmp_path / "wider.weights.h5"
    wider.save_weights(weights_file)
    model = kmn.V3Small(input_shape=(96, 96, 3), alpha=0.75)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="weights="):
        kmn.weights.load_weights_file(model, weights_file)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
