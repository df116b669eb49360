"""QAT stage: every variant quantizes, trains a step, saves, reloads and converts to an int8
TFLite graph that XNNPACK runs whole, float only where XNNPACK has no int8 kernel."""
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_mobilenets as kmn
from keras_mobilenets.training import qat_model

SIZE = 32
CLASSES = 4
VARIANTS = {
    "v1": {"alpha": 0.25},
    "v2": {"alpha": 0.35},
    "v3_small": {"alpha": 0.5},
    "v3_large": {"alpha": 0.5},
    "v3_small_minimalistic": {"alpha": 0.5, "minimalistic": True},
    "v4_conv_small": {},
    "v4_conv_medium": {},
    "v4_conv_large": {},
    "v4_hybrid_medium": {},
    "v4_hybrid_large": {},
}
# What XNNPACK takes in float only; everything else in the files is int8.
FLOAT_OPS = {"v3_small": {"HARD_SWISH", "SOFTMAX"}, "v3_large": {"HARD_SWISH", "SOFTMAX"},
             "v3_small_minimalistic": {"SOFTMAX"}, "v4_hybrid_large": {"SOFTMAX", "GELU"}}


def _variant(key):
    name = key.replace("_minimalistic", "")
    return name, {"input_shape": (SIZE, SIZE, 3), "classes": CLASSES, **VARIANTS[key]}


def to_int8_tflite(model, tmp_path):
    """The TFLite stage's full-integer conversion of a QAT model, int8 in and out."""
    from keras_mobilenets.tflite.converter import convert

    path = convert(model, tmp_path / "model.tflite", quantization="qat-int8", input_type="int8",
                   output_type="int8")
    with open(path, "rb") as file:
        return file.read()


def check_int8_one_partition(tflite_bytes, float_ops):
    """Every op int8 but `float_ops` (each between a DEQUANTIZE and a QUANTIZE), all in one XNNPACK
    partition; returns the output for a zero image."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_mobilenets.tflite.latency import delegation_report

    interpreter = Interpreter(model_content=tflite_bytes)
    interpreter.allocate_tensors()
    report = delegation_report(interpreter)
    assert report["partitions"] == 1, report
    assert report["ops_outside_delegate"] == {}, report
    in_float = set()
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        types = {np.dtype(t).name for t in op["result_types"]}
        if types == {"float32"}:
            in_float.add(op["op_name"])
        else:
            assert types == {"int8"}, (op["op_name"], types)
    assert in_float == float_ops
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], np.int8))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.slow
@pytest.mark.parametrize("key", list(VARIANTS))
def test_qat_trains_and_converts_to_one_int8_partition(key, tmp_path):
    import tf_keras

    name, kwargs = _variant(key)
    float_model = kmn.build(name, **kwargs)
    for weight in float_model.weights:  # trained hybrids' layer scales, not the 1e-5 that int8 rounds to 0
        if "layer_scale" in weight.path:
            weight.assign(np.ones(weight.shape))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    # Random weights have no BatchNorm statistics worth freezing: train them. The hybrids keep the
    # default (frozen), with statistics settled on the images first: with batch statistics, some
    # attention BATCH_MATMULs get int8 operands that XNNPACK refuses (see the README's QAT notes).
    batch_norm = "frozen" if name.startswith("v4_hybrid") else "train"
    if batch_norm == "frozen":
        for _ in range(30):
            float_model(images, training=True)
    model = qat_model.qat_model_from(float_model, name, batch_norm=batch_norm, **kwargs)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy())
    stem = next(w for w in model.trainable_weights if w.name.startswith("stem_conv/"))
    before = stem.numpy().copy()
    loss = model.train_on_batch(images, np.arange(4) % CLASSES)
    assert np.isfinite(loss)
    assert not np.allclose(before, stem.numpy())
    model.save(tmp_path / "qat.h5")
    with qat_model.import_tfmot().quantization.keras.quantize_scope(qat_model.custom_objects()):
        reloaded = tf_keras.models.load_model(tmp_path / "qat.h5", compile=False)
    np.testing.assert_allclose(reloaded(images).numpy(), model(images).numpy(), rtol=1e-5, atol=1e-6)
    scores = check_int8_one_partition(to_int8_tflite(reloaded, tmp_path), FLOAT_OPS.get(key, {"SOFTMAX"}))
    assert scores.shape == (1, CLASSES)


@pytest.mark.parametrize("key", ["v3_small", "v4_conv_small", "v4_hybrid_medium"])
def test_tf_keras_rebuild_computes_the_same_function(key):
    """The tf_keras forms (one-layer hard-swish, preprocessing as MUL then ADD, static reshapes,
    layer scale folded into the layer before it) compute what the Keras 3 model computes."""
    name, kwargs = _variant(key)
    float_model = kmn.build(name, **kwargs)
    for weight in float_model.weights:  # move BN statistics and layer scales off their initial values
        if "moving" in weight.path or "layer_scale" in weight.path:
            weight.assign(np.random.default_rng(1).uniform(0.5, 1.5, weight.shape))
    rebuilt = qat_model.build_tf_keras(name, **kwargs)
    qat_model.copy_weights(float_model, rebuilt)
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(images).numpy(), float_model(images).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_qat_file_gives_probabilities_as_its_metadata_says(tmp_path):
    """An app reads scores through the metadata: they must be probabilities, not logits."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_mobilenets.tflite import metadata
    from keras_mobilenets.tflite.converter import convert

    name, kwargs = _variant("v3_small")
    model = qat_model.qat_model_from(kmn.build(name, **kwargs), name, **kwargs)
    images = np.random.default_rng(0).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    model(images, training=True)  # learn activation ranges, as fine-tuning does
    labels = [f"class{i}" for i in range(CLASSES)]
    for output_type, tolerance in (("float32", 1e-5), ("uint8", 3 * CLASSES / 256)):
        path = convert(model, tmp_path / f"{output_type}.tflite", quantization="qat-int8",
                       output_type=output_type, metadata={"name": name, "description": "test", "version": "1",
                                                          "labels": labels})
        output, = metadata.read(path)["outputs"]
        assert output["stats"] == {"min": [0.0], "max": [1.0]} and metadata.read_labels(path) == labels
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        for image in images:
            interpreter.set_tensor(source["index"], image[None])
            interpreter.invoke()
            scores = interpreter.get_tensor(target["index"])[0].astype(np.float32)
            if "quantization" in output:  # what the metadata says the integer scores mean
                scale, zero_point = output["quantization"]["scale"][0], output["quantization"]["zero_point"][0]
                scores = (scores - zero_point) * scale
            assert scores.min() >= 0 and scores.max() <= 1 + 1e-6
            assert abs(scores.sum() - 1) <= tolerance, scores


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown variant 'v5'"):
        qat_model.check_supported("v5")


def test_copy_weights_names_a_mismatched_layer():
    float_model = kmn.build("v1", input_shape=(SIZE, SIZE, 3), alpha=0.25, classes=3)
    other = qat_model.build_tf_keras("v1", input_shape=(SIZE, SIZE, 3), alpha=0.5, classes=3)
    with pytest.raises(ValueError, match="layer 'stem_conv': weight shapes"):
        qat_model.copy_weights(float_model, other)


def test_keras3_still_trains_after_tfmot_in_the_same_process():
    """What a user does: QAT imports tfmot, then they go on with a Keras 3 model."""
    script = """
import os
import numpy as np
from keras_mobilenets.training.qat_model import import_tfmot
tfmot = import_tfmot()
assert "TF_USE_LEGACY_KERAS" not in os.environ, os.environ["TF_USE_LEGACY_KERAS"]
import keras, keras_mobilenets as kmn
model = kmn.build("v3_small", input_shape=(32, 32, 3), alpha=0.5, classes=3)
assert isinstance(model, keras.Model) and keras.__version__.startswith("3.")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
history = model.fit(np.zeros((4, 32, 32, 3), "float32"), np.arange(4) % 3, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"][0])
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_qat_cli_fine_tunes_a_run_and_saves_the_model_in_it(tmp_path):
    from keras_mobilenets.app.cli import main
    from keras_mobilenets.training import loop, qat, runs

    run_dir = tmp_path / "digits_v1"
    loop.fit("v1", "digits", run_dir=run_dir, epochs=1, image_size=SIZE, batch_size=64, alpha=0.25, verbose=0)
    assert main(["qat", "--run", str(run_dir), "--epochs", "1", "--batch-size", "64"]) == 0
    model = qat.load_qat_model(run_dir)
    assert (run_dir / runs.QAT_HISTORY).read_text().count("\n") == 2  # header + 1 epoch
    backup = [p for p in (run_dir / runs.QAT_BACKUP).rglob("*") if p.is_file()]
    assert backup == []  # deleted once the fine-tune finished: a new one starts afresh
    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    assert model(images).shape == (1, 10)


def test_qat_of_a_missing_run_says_what_to_do(tmp_path):
    from keras_mobilenets.training import qat

    with pytest.raises(FileNotFoundError, match="not a run directory"):
        qat.quantization_aware_run(tmp_path / "nothing", epochs=1)
    with pytest.raises(FileNotFoundError, match="qat_model.h5"):
        qat.load_qat_model(tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        qat.quantization_aware_run(tmp_path, epochs=0)


@pytest.mark.parametrize("batch_norm", ["frozen", "train"])
def test_qat_keeps_batch_norm_frozen_only_when_asked(batch_norm, tmp_path):
    import tensorflow as tf

    from keras_mobilenets.training import qat

    name, kwargs = _variant("v3_small")
    model = qat_model.qat_model_from(kmn.build(name, **kwargs), name, batch_norm=batch_norm, **kwargs)
    watched = {w.name: w for w in model.weights
               if "moving_mean" in w.name or "gamma" in w.name or w.name == "stem_conv/kernel:0"}
    before = {name: w.numpy().copy() for name, w in watched.items()}
    images = np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices((images, tf.one_hot(np.arange(8) % CLASSES, CLASSES))).batch(4)
    qat.fine_tune(model, batches, batches, epochs=1, learning_rate=1e-3, label_smoothing=0.1,
                  run_dir=tmp_path, verbose=0)
    moved = {name for name, w in watched.items() if not np.array_equal(before[name], w.numpy())}
    batch_norm_moved = {name for name in moved if "moving_mean" in name or "gamma" in name}
    assert bool(batch_norm_moved) == (batch_norm == "train"), sorted(moved)
    assert "stem_conv/kernel:0" in moved  # the convolutions learn either way
    loaded = qat.load_qat_model(tmp_path)  # the saved best model computes the same
    np.testing.assert_allclose(loaded(images).numpy(), model(images).numpy(), rtol=1e-5, atol=1e-5)


def test_qat_names_a_bad_batch_norm_mode():
    name, kwargs = _variant("v1")
    with pytest.raises(ValueError, match="batch_norm: must be one of frozen, train, got 'fold'"):
        qat_model.qat_model_from(kmn.build(name, **kwargs), name, batch_norm="fold", **kwargs)


def test_interrupted_fine_tune_resumes_with_its_history_and_best_score(tmp_path):
    import tensorflow as tf

    from keras_mobilenets.training import qat, runs

    name, kwargs = _variant("v1")
    float_model = kmn.build(name, **kwargs)
    images = np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype(np.float32)
    labels = tf.one_hot(np.arange(8) % CLASSES, CLASSES)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    epochs_served = []

    def failing_in_epoch_two():  # the process dies during the second epoch
        epochs_served.append(1)
        if len(epochs_served) == 2:
            raise RuntimeError("killed")
        yield from zip(images.reshape(2, 4, SIZE, SIZE, 3), np.asarray(labels).reshape(2, 4, CLASSES))

    failing = tf.data.Dataset.from_generator(failing_in_epoch_two, output_signature=(
        tf.TensorSpec((4, SIZE, SIZE, 3), tf.float32), tf.TensorSpec((4, CLASSES), tf.float32)))
    with pytest.raises(Exception, match="killed"):
        qat.fine_tune(qat_model.qat_model_from(float_model, name, **kwargs), failing, batches,
                      epochs=3, run_dir=tmp_path, verbose=0)
    history = tmp_path / runs.QAT_HISTORY
    first_best = qat._best_so_far(history, "val_accuracy")
    assert history.read_text().count("\n") == 2 and first_best is not None

    qat.fine_tune(qat_model.qat_model_from(float_model, name, **kwargs), batches, batches,
                  epochs=3, run_dir=tmp_path, verbose=0)
    assert history.read_text().count("\n") == 4  # header + epochs 1, 2, 3: resumed, not restarted
    assert [line.split(",")[0] for line in history.read_text().splitlines()] == ["epoch", "1", "2", "3"]
    assert not [path for path in (tmp_path / runs.QAT_BACKUP).rglob("*") if path.is_file()]
    qat.fine_tune(qat_model.qat_model_from(float_model, name, **kwargs), batches, batches,
                  epochs=1, run_dir=tmp_path, verbose=0)
    assert history.read_text().count("\n") == 2  # a new fine-tune starts a new history
