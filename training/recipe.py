"""The MobileNet training recipe: optimizer, learning-rate schedule, loss, distribution strategy."""
import keras
import tensorflow as tf

from keras_mobilenets.training.config import STRATEGIES  # the choices, named with the settings
# SGD: 0.1 per 256 images, scaled linearly with the batch (Goyal et al.); AdamW: a fixed 1e-3.
BASE_LEARNING_RATE = {"sgd": 0.1 / 256, "adamw": 1e-3}
WEIGHT_DECAY = {"sgd": 4e-5, "adamw": 0.05}
NO_DECAY = ["bias", "gamma", "beta"]  # biases and BatchNorm parameters keep their scale


def default_learning_rate(optimizer, batch_size):
    return BASE_LEARNING_RATE[optimizer] * (batch_size if optimizer == "sgd" else 1)


def make_optimizer(name, *, learning_rate, steps, warmup_steps, weight_decay, momentum, ema, ema_momentum):
    """SGD-momentum (Nesterov) or AdamW with linear warmup then cosine decay to zero over `steps`."""
    warmup_steps = min(warmup_steps, steps - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=max(1, steps - warmup_steps),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    common = dict(learning_rate=schedule, weight_decay=weight_decay or None, use_ema=ema,
                  ema_momentum=ema_momentum)
    if name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=momentum, nesterov=True, **common)
    else:
        optimizer = keras.optimizers.AdamW(**common)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def make_strategy(name):
    """A tf.distribute strategy; `mirrored` uses every GPU, or every logical CPU where there is none.

    `multi_worker` trains on the cluster that the TF_CONFIG environment
    variable describes, `tpu` on a TPU; see distributed.py.
    """
    from keras_mobilenets.training import distributed  # it imports is_chief from here

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker":
        return distributed.multi_worker_strategy()
    if name == "tpu":
        return distributed.tpu_strategy()
    raise ValueError(f"strategy: unknown {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy):
    """Only the chief worker writes the run directory (worker 0, or the task of type "chief")."""
    return strategy.extended.should_checkpoint
