"""Multi-worker training for real: two worker processes on localhost, TF_CONFIG, the same command on both."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

from keras_mobilenets.training import data, distributed, recipe

TINY = ["--model", "v1", "--alpha", "0.25", "--image-size", "32", "--batch-size", "32", "--no-flip",
        "--test-fraction", "0.5", "--strategy", "multi_worker", "--epochs", "2"]
COUNT_LINE = re.compile(r"worker (\d) of 2 workers: epoch (\d+): trained on (\d+) images")
TIMEOUT = 240  # seconds for one start of the cluster; a healthy run takes well under half


def start_workers(tmp_path, run, attempt, command=("train", *TINY)):
    """Both workers of a 2-worker cluster, each with its own log file and temporary folder."""
    workers = []
    for index, tf_config in enumerate(distributed.localhost_cluster(2)):
        temporary = tmp_path / f"tmp-{attempt}-{index}"
        temporary.mkdir()
        env = {**os.environ, "TF_CONFIG": tf_config, "TMPDIR": str(temporary),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        log = open(tmp_path / f"worker-{attempt}-{index}.log", "w")
        argv = [sys.executable, "-m", "keras_mobilenets.app.cli", *command, "--run", str(run)]
        workers.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, text=True),
                        log, temporary))
    return workers


def wait_for(workers, deadline):
    for process, log, _ in workers:
        try:
            process.wait(timeout=max(1, deadline - time.time()))
        finally:
            log.close()
    return [process.returncode for process, _, _ in workers]


def stop(workers):
    for process, log, _ in workers:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def log_text(tmp_path, attempt, index):
    return (tmp_path / f"worker-{attempt}-{index}.log").read_text(errors="replace")


def image_counts(tmp_path, attempt):
    """{epoch: [images worker 0 trained on, images worker 1 trained on]}, as each worker printed them."""
    counts = {}
    for index in range(2):
        for worker, epoch, images in COUNT_LINE.findall(log_text(tmp_path, attempt, index)):
            assert int(worker) == index
            counts.setdefault(int(epoch), [None, None])[index] = int(images)
    return counts


def history_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def history(run):
    return history_rows(run / "history.csv")


def check_finished_run(run, workers):
    """2 epochs of history, a loadable model, and nothing in the run directory from worker 1.

    `workers`: the workers of each start of the cluster, the last one finished.
    """
    assert [int(row["epoch"]) for row in history(run)] == [1, 2]
    config = json.loads((run / "config.json").read_text())
    assert config["workers"] == 2 and config["batch_size"] == 32
    assert config["learning_rate"] == pytest.approx(recipe.default_learning_rate("sgd", 64))
    model = keras.saving.load_model(run / "model.keras")
    assert model.outputs[0].shape[-1] == 10
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["epoch-001.keras", "epoch-002.keras"]
    assert not list(run.glob("**/.*.tmp-*"))
    # TensorBoard names its event files ...HOST.PID...: every one of them must be the chief's.
    chief_pids = {str(start[0][0].pid) for start in workers}
    event_pids = {re.search(r"\.(\d+)\.\d+\.v2$", path.name).group(1)
                  for path in (run / "logs").glob("**/events.out.tfevents.*")}
    assert event_pids and event_pids <= chief_pids, (event_pids, chief_pids)
    worker_1_temporary = workers[-1][1][2]  # its own folder, gone when it ended (not after a SIGKILL)
    assert not any(worker_1_temporary.iterdir())


def check_halves(counts, epochs, train_count):
    """Each worker's steps took half of the epoch's training images (one batch apart at most)."""
    assert sorted(counts) == epochs
    for epoch in epochs:
        first, second = counts[epoch]
        assert first + second == train_count, (epoch, counts)
        assert abs(first - second) <= 32, (epoch, counts)


def train_count():
    return data.count(data.load("digits", image_size=32, test_fraction=0.5).train)


def run_cluster(tmp_path, run, attempt, command=("train", *TINY)):
    workers = start_workers(tmp_path, run, attempt, command)
    try:
        codes = wait_for(workers, time.time() + TIMEOUT)
    finally:
        stop(workers)
    assert codes == [0, 0], log_text(tmp_path, attempt, 0)[-3000:] + log_text(tmp_path, attempt, 1)[-3000:]
    return workers


@pytest.mark.slow
def test_two_workers_train_two_epochs_on_half_the_data_each_then_qat(tmp_path):
    run = tmp_path / "run"
    workers = run_cluster(tmp_path, run, attempt=0)
    check_finished_run(run, [workers])
    check_halves(image_counts(tmp_path, 0), [1, 2], train_count())

    before = {path: path.stat().st_mtime_ns for path in run.glob("**/*") if path.is_file()}
    qat = run_cluster(tmp_path, run, attempt=1, command=("qat", "--strategy", "multi_worker", "--epochs", "1"))
    assert len(history_rows(run / "qat_history.csv")) == 1
    assert "QAT model:" in log_text(tmp_path, 1, 0)
    from keras_mobilenets.training.qat import load_qat_model

    assert load_qat_model(run).outputs[0].shape[-1] == 10
    after = {path for path in run.glob("**/*") if path.is_file()}
    assert {path.name for path in after - before.keys()} == {"qat_history.csv", "qat_model.h5"}
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in before.items())  # the float run untouched
    assert not any(qat[1][2].iterdir())  # worker 1 left no temporary folder


@pytest.mark.slow
def test_sigkill_one_worker_then_the_same_command_on_both_resumes(tmp_path):
    run = tmp_path / "run"
    state = run / "state.json"
    first = start_workers(tmp_path, run, attempt=0)
    try:
        deadline = time.time() + TIMEOUT
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
            assert all(process.poll() is None for process, _, _ in first), log_text(tmp_path, 0, 0)[-3000:]
            assert time.time() < deadline, "no epoch finished in time"
            time.sleep(0.1)
        epoch_one = history(run)[0]
        time.sleep(1)  # into the second epoch
        first[1][0].send_signal(signal.SIGKILL)
        codes = wait_for(first, time.time() + 60)  # the chief stops by itself once its peer is gone
    finally:
        stop(first)
    assert codes[0] != 0 and codes[1] == -signal.SIGKILL
    assert json.loads(state.read_text())["epoch"] == 1, "the kill came after the last epoch"

    second = run_cluster(tmp_path, run, attempt=1)
    check_finished_run(run, [first, second])
    assert history(run)[0] == epoch_one
    check_halves(image_counts(tmp_path, 1), [2], train_count())  # resumed: only epoch 2 trained again


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG environment variable, which is not set"):
        distributed.multi_worker_strategy()
    monkeypatch.setenv("TF_CONFIG", "{cluster: nope}")
    with pytest.raises(ValueError, match="TF_CONFIG: not JSON"):
        distributed.multi_worker_strategy()


def test_multi_worker_after_tensorflow_started_says_to_create_it_first(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # this process has run TensorFlow operations
    monkeypatch.setenv("TF_CONFIG", distributed.localhost_cluster(1)[0])
    with pytest.raises(RuntimeError, match="must be created before TensorFlow runs its first operation"):
        distributed.multi_worker_strategy()


def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError, match="strategy: 'tpu' found no TPU \\(this machine: TPUs not found"):
        recipe.make_strategy("tpu")


@pytest.mark.slow
def test_from_python_importing_the_package_leaves_time_to_create_the_strategy(tmp_path):
    """fit(strategy="multi_worker") creates the strategy itself: importing our modules runs no TF op."""
    script = ("from keras_mobilenets.training.loop import fit\n"
              "from keras_mobilenets.training import distributed, recipe\n"
              "strategy = recipe.make_strategy('multi_worker')\n"
              "print('WORKERS', distributed.worker_count(strategy), 'CHIEF', recipe.is_chief(strategy))\n")
    env = {**os.environ, "TF_CONFIG": distributed.localhost_cluster(1)[0], "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "WORKERS 1 CHIEF True" in done.stdout, done.stderr[-3000:]
