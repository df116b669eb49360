"""Shared test set-up: quiet TensorFlow logs, deterministic seeds, one small real pipeline run."""
import json
import os
import signal
import subprocess
import sys
import time

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


@pytest.fixture
def kill_after_first_epoch():
    """kill(command, state_json): runs `command`, SIGKILLs it once state.json says an epoch is done;
    returns the epoch the run had committed."""
    return _kill_after_first_epoch


def _kill_after_first_epoch(command, state, *, timeout=300):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + timeout
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.time() < deadline, "no epoch finished in time"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    return json.loads(state.read_text())["epoch"]
