"""Shared test set-up: quiet TensorFlow logs, deterministic seeds, one small real pipeline run."""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)
import pytest  # noqa: E402

# The pipeline at its smallest: digits at 32 px, 1 epoch, 1 QAT epoch, few benchmark runs.
TINY_PIPELINE = ("--model", "v3_small", "--image-size", "32", "--epochs", "1", "--qat-epochs", "1",
                 "--batch-size", "64", "--benchmark-runs", "5")


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """(run directory, the command's output) of one TINY_PIPELINE run, made once for the pipeline and
    report tests (a pipeline run is a minute and a half on 2 cores); copy it before changing it."""
    run = tmp_path_factory.mktemp("tiny_pipeline") / "run"
    result = subprocess.run([sys.executable, "-m", "keras_mobilenets.app.cli", "pipeline", *TINY_PIPELINE,
                             "--run", str(run)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-4000:]
    return run, result.stdout
