"""Multi-worker training on this machine: throughput of 1 vs 2 workers, and the recovery from a killed worker.

    python benchmarks/multi_worker.py [--model v1 --alpha 0.25 --image-size 32 --epochs 3]

Each worker is a `keras-mobilenets train --strategy multi_worker` process on
localhost with its own TF_CONFIG, as on a real cluster; `--batch-size` is one
worker's, so 2 workers train with twice the global batch. Throughput: the
training images of an epoch over the time between two epoch ends as the chief
records them in state.json (the first epoch, which traces the graphs, is left out; the time
includes validation and the checkpoint). On a 2-core machine two workers share
the same cores: expect no speed-up; the figure is for the record.

Recovery: SIGKILL worker 1 a second into epoch 2, time how long the chief
takes to notice and stop by itself, restart both with the same command, and
time until the interrupted epoch is done again.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from keras_mobilenets.training import data, distributed

TIMEOUT = 900


class Cluster:
    """`workers` training processes on localhost; the run's state.json is watched for epoch ends."""

    def __init__(self, workers, run, arguments, folder, name):
        self.log = os.path.join(folder, f"{name}-chief.log")
        self.processes = []
        for index, tf_config in enumerate(distributed.localhost_cluster(workers)):
            env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
            output = open(self.log if index == 0 else os.devnull, "w")
            command = [sys.executable, "-m", "keras_mobilenets.app.cli", "train", *arguments,
                       "--strategy", "multi_worker", "--run", run]
            self.processes.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env))
            output.close()
        self.state = os.path.join(run, "state.json")

    def epoch_end(self, epoch):
        """Waits until the chief has committed `epoch`; the time it was seen."""
        deadline = time.time() + TIMEOUT
        while True:
            try:
                with open(self.state) as handle:
                    if json.load(handle)["epoch"] >= epoch:
                        return time.perf_counter()
            except FileNotFoundError:
                pass
            if self.processes[0].poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the chief stopped or stalled before epoch {epoch}; see {self.log}")
            time.sleep(0.05)

    def wait(self):
        return [process.wait(timeout=TIMEOUT) for process in self.processes]

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def throughput(workers, arguments, epochs, folder, images):
    cluster = Cluster(workers, os.path.join(folder, f"run-{workers}"), [*arguments, "--epochs", str(epochs)],
                      folder, f"throughput-{workers}")
    try:
        ends = [cluster.epoch_end(epoch) for epoch in range(1, epochs + 1)]
        if cluster.wait() != [0] * workers:
            raise RuntimeError(f"a worker failed; see {cluster.log}")
    finally:
        cluster.stop()
    seconds = (ends[-1] - ends[0]) / (epochs - 1)
    return images / seconds, seconds


def recovery(arguments, folder):
    run = os.path.join(folder, "run-killed")
    arguments = [*arguments, "--epochs", "2"]
    first = Cluster(2, run, arguments, folder, "killed")
    try:
        first.epoch_end(1)
        time.sleep(1)  # into epoch 2
        killed = time.perf_counter()
        first.processes[1].send_signal(signal.SIGKILL)
        first.processes[0].wait(timeout=TIMEOUT)
        noticed = time.perf_counter()
    finally:
        first.stop()
    second = Cluster(2, run, arguments, folder, "restarted")
    try:
        redone = second.epoch_end(2)
        if second.wait() != [0, 0]:
            raise RuntimeError(f"a restarted worker failed; see {second.log}")
    finally:
        second.stop()
    return noticed - killed, redone - noticed, redone - killed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="v1")
    parser.add_argument("--alpha", default="0.25")
    parser.add_argument("--image-size", default="32")
    parser.add_argument("--batch-size", default="32", help="per worker")
    parser.add_argument("--epochs", type=int, default=3, help="for throughput; at least 2")
    args = parser.parse_args()
    arguments = ["--model", args.model, "--alpha", args.alpha, "--image-size", args.image_size,
                 "--batch-size", args.batch_size, "--no-flip"]
    images = data.count(data.load("digits", image_size=int(args.image_size)).train)
    folder = tempfile.mkdtemp(prefix="multi-worker-benchmark-")
    rows = [(workers, *throughput(workers, arguments, args.epochs, folder, images)) for workers in (1, 2)]
    detect, restart, total = recovery(arguments, folder)
    shutil.rmtree(folder)  # kept, with the chiefs' logs, when something failed

    print(f"{args.model} alpha {args.alpha}, {args.image_size} px, digits, batch {args.batch_size} per worker, "
          f"{os.cpu_count()} CPU cores")
    print("| workers | global batch | images/s | s per epoch |\n|---|---|---|---|")
    for workers, rate, seconds in rows:
        print(f"| {workers} | {workers * int(args.batch_size)} | {rate:.0f} | {seconds:.1f} |")
    print("\n| recovery from a SIGKILLed worker (2 workers) | s |\n|---|---|")
    print(f"| the chief notices and stops by itself | {detect:.1f} |")
    print(f"| restart with the same command until the interrupted epoch is done | {restart:.1f} |")
    print(f"| SIGKILL until the interrupted epoch is done | {total:.1f} |")


if __name__ == "__main__":
    main()
