"""Training on several machines (MultiWorkerMirroredStrategy) or a TPU, with tf.distribute.

Every worker runs the same command; the TF_CONFIG environment variable tells
each one the cluster and which task it is. Worker 0 (or the task of type
"chief") is the chief: it writes the run directory. The other workers write
their checkpoints, history, models and logs to a temporary folder of their
own, as TensorFlow's multi-worker guide has them do (every worker takes part
in saving), deleted when the process ends; nothing of theirs lands in the run.

`batch_size` is the batch of one worker; the global batch is
`batch_size * workers`, and the recipe's learning rate follows the global
batch (SGD: 0.1 per 256 images, Goyal et al.).
"""
import atexit
import json
import os
import pathlib
import shutil
import socket
import tempfile

import keras
import tensorflow as tf

from keras_mobilenets.training.recipe import is_chief

# TensorFlow configures collective ops once per process, before its first
# operation: one MultiWorkerMirroredStrategy serves every fit of the process.
_multi_worker = None
_worker_dir = None  # this process's temporary folder, on a worker other than the chief


def localhost_cluster(workers):
    """TF_CONFIG values (JSON), one per worker, for `workers` workers on free ports of this machine.

    For trying a cluster on one machine (the tests and benchmarks/multi_worker.py do).
    """
    sockets = [socket.socket() for _ in range(workers)]
    for held in sockets:  # all held at once, so that no two get the same port
        held.bind(("localhost", 0))
    cluster = {"worker": [f"localhost:{held.getsockname()[1]}" for held in sockets]}
    for held in sockets:
        held.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(workers)]


def multi_worker_strategy():
    """The process's MultiWorkerMirroredStrategy, created on the first call from TF_CONFIG.

    Call it at the start of the program, before anything runs a TensorFlow
    operation (loading data, building a model); `fit(strategy="multi_worker")`
    then uses it.
    """
    global _multi_worker
    if _multi_worker is None:
        _check_tf_config()
        try:
            _multi_worker = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            if "program startup" not in str(error):
                raise
            raise RuntimeError(
                "strategy: 'multi_worker' must be created before TensorFlow runs its first operation, "
                "and this process has already run some. Call "
                "keras_mobilenets.training.distributed.multi_worker_strategy() at the start of the "
                "program (before loading data or building a model); fit(strategy='multi_worker') then uses it"
            ) from None
    return _multi_worker


def tpu_strategy():
    """A TPUStrategy on the machine's own TPU, or on the TPU named by the TPU_NAME environment variable."""
    name = os.environ.get("TPU_NAME", "local")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"strategy: 'tpu' found no TPU ({'this machine' if name == 'local' else f'TPU_NAME={name}'}: "
            f"{first_line}); run on a Cloud TPU VM, or set TPU_NAME to a TPU node's name, "
            "or choose another strategy (default, mirrored, multi_worker)"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text:
        raise ValueError("strategy: 'multi_worker' reads the cluster from the TF_CONFIG environment "
                         f"variable, which is not set; set it on every worker, e.g. TF_CONFIG='{example}' "
                         "(the same cluster everywhere, each worker its own index)")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG: not JSON ({error}); expected e.g. {example}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not isinstance(
            config.get("task"), dict):
        raise ValueError(f"TF_CONFIG: needs a 'cluster' and a 'task' object, got {text}; expected e.g. {example}")


def worker_count(strategy):
    """How many workers train together (1 on one machine, whatever its number of GPUs)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(jobs.get("chief", [])) + len(jobs.get("worker", []))


def is_multi_worker(strategy):
    """More than one worker (a one-worker cluster trains as on one machine, Keras's way)."""
    return worker_count(strategy) > 1


def worker_name(strategy):
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id} of {worker_count(strategy)} workers"


def write_dir(run_dir, strategy):
    """Where this worker writes the run: the run directory on the chief, else its own temporary folder."""
    global _worker_dir
    if is_chief(strategy):
        return pathlib.Path(run_dir)
    if _worker_dir is None:
        _worker_dir = pathlib.Path(tempfile.mkdtemp(prefix="keras-mobilenets-worker-"))
        atexit.register(shutil.rmtree, _worker_dir, ignore_errors=True)
    folder = _worker_dir / pathlib.Path(run_dir).name
    folder.mkdir(exist_ok=True)
    return folder


def keras_fit(strategy, model, train, *, validation_data=None, callbacks=(), verbose="auto", **fit_kwargs):
    """`model.fit(train, ...)` on `strategy`, sharding the data by example across workers.

    Keras 3.15's fit cannot run MultiWorkerMirroredStrategy as it comes
    (keras-team/keras#20585): before training it averages a batch across
    workers outside a tf.function, which fails, and it averages each step's
    scalar logs across workers along an axis 0 that scalars lack. So on
    several workers the model trains with the strategy of the enclosing scope
    (that skips the pre-fit step; Keras builds the model during the first
    step instead) and with steps whose logs have a leading axis. Each worker
    also counts the training images its steps received, and prints them after
    every epoch: the record that the data was split between workers.
    """
    if not is_multi_worker(strategy):
        return model.fit(train, validation_data=validation_data, callbacks=list(callbacks), verbose=verbose,
                         **fit_kwargs)
    train = shard_by_example(train)
    validation_data = None if validation_data is None else shard_by_example(validation_data)
    images = tf.Variable(0, dtype=tf.int64, trainable=False)  # made outside the scope: this worker's own
    train_step, test_step = model.train_step, model.test_step

    def counted_train_step(data):
        images.assign_add(tf.cast(tf.shape(tf.nest.flatten(data)[0])[0], tf.int64))
        return _with_leading_axis(train_step(data))

    callbacks = [*callbacks, _ImageCount(images, worker_name(strategy), verbose)]
    own_strategy = model._distribute_strategy
    model.train_step = counted_train_step
    model.test_step = lambda data: _with_leading_axis(test_step(data))
    model._distribute_strategy = None
    model.train_function = model.test_function = None  # trace the steps above, not cached ones
    try:
        with strategy.scope():
            return model.fit(train, validation_data=validation_data, callbacks=callbacks, verbose=verbose,
                             **fit_kwargs)
    finally:
        del model.train_step, model.test_step
        model._distribute_strategy = own_strategy
        model.train_function = model.test_function = None


def shard_by_example(dataset):
    """Each worker takes every n-th batch; by example, not by file, so that any source splits evenly."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _with_leading_axis(logs):
    return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), logs)


class _ImageCount(keras.callbacks.Callback):
    """Prints how many training images this worker's steps took in each epoch."""

    def __init__(self, images, worker, verbose):
        super().__init__()
        self.images = images
        self.worker = worker
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        self.images.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose:
            print(f"{self.worker}: epoch {epoch + 1}: trained on {int(self.images.numpy())} images", flush=True)
