"""BatchNorm momentum for short runs: moving statistics that keep up with the weights.

A MobileNet's BatchNorm layers average their statistics with momentum 0.999
(V3, V4) or 0.99: they need thousands of steps to forget their initial values.
A run of a few hundred steps then validates with statistics of weights long
gone, near chance, while its training accuracy (batch statistics) looks fine.
"""
import keras

FLOOR = 0.9  # never average over fewer than ~10 steps: single batches are noisy
SETTLE_FRACTION = 0.1  # the statistics settle within a tenth of an epoch


def settled_momentum(momentum, steps_per_epoch):
    """The momentum `settle_batch_norm` gives a layer that has `momentum`: never a larger one."""
    return min(momentum, max(FLOOR, 1 - 1 / (SETTLE_FRACTION * steps_per_epoch)))


def settle_batch_norm(model, steps_per_epoch):
    """Lowers each BatchNorm's momentum so its moving statistics settle within a tenth of an epoch.

    For users who call `model.fit` themselves (the package's `fit` does this
    with `bn_momentum="auto"`): momentum min(layer's, max(0.9, 1 - 10 / steps_per_epoch)).
    Call it before `model.fit` (or compile again after it): Keras reads the
    momentum when it traces the training step. Layers of nested models count.
    It needs a learning rate that decays by the end of training (fit's cosine
    schedule does): at a constant rate (Adam's default 1e-3) the weights keep
    moving and the statistics of the last steps still lag them.

        model = kmn.V3Small(input_shape=(32, 32, 3), classes=10)
        kmn.training.settle_batch_norm(model, steps_per_epoch=len(train_batches))
        model.compile(...); model.fit(train_batches, ...)

    Returns the number of BatchNormalization layers it set.
    """
    if not isinstance(steps_per_epoch, int) or isinstance(steps_per_epoch, bool) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch: must be a positive integer, got {steps_per_epoch!r}")
    layers = list(batch_norm_layers(model))
    for layer in layers:
        layer.momentum = settled_momentum(layer.momentum, steps_per_epoch)
    return len(layers)


def batch_norm_layers(model):
    """Every BatchNormalization layer of `model`, inside nested models too."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif hasattr(layer, "layers"):
            yield from batch_norm_layers(layer)
