"""The builders use only `keras`, so they run under another backend too (JAX, if installed)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_mobilenets as kmn

pytest.importorskip("jax")  # an optional backend: this test needs it installed

SCRIPT = """
import sys, numpy as np, keras, keras_mobilenets as kmn
assert keras.backend.backend() == "jax"
variant, weights, images, out = sys.argv[1:]
model = kmn.build(variant, input_shape=(64, 64, 3), classes=4, weights=weights)
np.save(out, model.predict(np.load(images), verbose=0))
"""


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["v3_small", "v4_hybrid_medium"])
def test_same_outputs_under_jax(tmp_path, variant):
    model = kmn.build(variant, input_shape=(64, 64, 3), classes=4)
    weights = tmp_path / "model.weights.h5"
    model.save_weights(weights)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, variant, str(weights), str(tmp_path / "images.npy"),
         str(tmp_path / "out.npy")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0), atol=1e-5)
