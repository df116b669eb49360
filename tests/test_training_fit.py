"""The fit loop on the bundled digits: accuracy, the run directory, transfer learning, strategies."""
import csv
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_mobilenets as kmn
from keras_mobilenets.training.accuracy import evaluate
from keras_mobilenets.training.loop import fit

# A small, quick-to-trace V3-Small at 32 px; SGD at 0.2 learns the digits in a few epochs.
TINY = dict(alpha=0.35, minimalistic=True, image_size=32, batch_size=64,
            learning_rate=0.2, flip=False, verbose=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    keras.utils.set_random_seed(0)
    result = fit("v3_small", run_dir=run_dir, epochs=6, keep_checkpoints=2, **TINY)
    return run_dir, result


@pytest.mark.slow
def test_bundled_digits_run_beats_chance_on_its_test_split(digits_run):
    run_dir, result = digits_run
    scores = evaluate(run_dir)
    assert scores["count"] == 179 and scores["split"] == "test"
    assert scores["top1"] > 0.6, scores  # chance is 0.1
    assert scores["top5"] >= scores["top1"]
    assert os.path.getsize(scores["confusion_matrix_png"]) > 1000
    assert result.best_accuracy > 0.6 and 1 <= result.best_epoch <= 6


@pytest.mark.slow
def test_run_directory_holds_what_the_next_stages_need(digits_run):
    run_dir, _ = digits_run
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "v3_small" and config["dataset"] == "digits" and config["image_size"] == 32
    assert config["model_kwargs"] == {"alpha": 0.35, "minimalistic": True, "input_shape": [32, 32, 3], "classes": 10}
    rebuilt = kmn.build(config["model"], **config["model_kwargs"])
    best = keras.saving.load_model(run_dir / "model.keras")
    rebuilt.set_weights(best.get_weights())  # same architecture, weight for weight
    assert (run_dir / "labels.txt").read_text().split() == config["class_names"] == [str(d) for d in range(10)]
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "accuracy", "val_accuracy", "val_top5", "learning_rate"} <= rows[0].keys()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-005.keras", "epoch-006.keras"]
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert not [p for p in run_dir.rglob(".*tmp*")]  # no temporary files left behind


@pytest.mark.slow
def test_rerunning_a_finished_run_trains_nothing_and_other_settings_are_refused(digits_run):
    run_dir, first = digits_run
    before = (run_dir / "state.json").read_text()
    again = fit("v3_small", run_dir=run_dir, epochs=6, keep_checkpoints=2, **TINY)
    assert (run_dir / "state.json").read_text() == before and again.best_epoch == first.best_epoch
    with pytest.raises(ValueError, match=r"other settings \(seed: 0 -> 1\); re-run"):
        fit("v3_small", run_dir=run_dir, epochs=6, keep_checkpoints=2, **{**TINY, "seed": 1})
    with pytest.raises(ValueError, match=r"epochs: 6 -> 5 \(a run can get more epochs, not fewer\)"):
        fit("v3_small", run_dir=run_dir, epochs=5, keep_checkpoints=2, **TINY)


@pytest.mark.slow
def test_transfer_from_a_run_with_frozen_backbone_then_fine_tuning(digits_run, tmp_path):
    source, _ = digits_run
    run_dir = tmp_path / "transfer"
    result = fit("v3_small", run_dir=run_dir, init_from=source, freeze_epochs=1, epochs=2, optimizer="adamw",
                 ema=True, ema_momentum=0.9, **{**TINY, "learning_rate": 1e-3})
    start = keras.saving.load_model(source / "model.keras")
    frozen_epoch = keras.saving.load_model(run_dir / "checkpoints" / "epoch-001.keras")
    stem = "stem_conv"
    np.testing.assert_array_equal(frozen_epoch.get_layer(stem).get_weights()[0], start.get_layer(stem).get_weights()[0])
    assert not np.array_equal(result.model.get_layer(stem).get_weights()[0], start.get_layer(stem).get_weights()[0])
    assert result.best_accuracy > 0.5  # started from a trained run, not from scratch
    config = json.loads((run_dir / "config.json").read_text())
    assert config["init_from"] == str(source) and config["fine_tune_learning_rate"] == pytest.approx(1e-4)


def test_bad_options_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="model: unknown variant 'v9'"):
        fit("v9", run_dir=tmp_path / "a", epochs=1, **TINY)
    with pytest.raises(ValueError, match="batch_size: 5000 is larger than the training split"):
        fit("v3_small", run_dir=tmp_path / "b", epochs=1, **{**TINY, "batch_size": 5000})
    with pytest.raises(ValueError, match="strategy: unknown 'gpus'"):
        fit("v3_small", run_dir=tmp_path / "c", strategy="gpus", **TINY)
    with pytest.raises(ValueError, match="freeze_epochs"):
        fit("v3_small", run_dir=tmp_path / "d", epochs=2, freeze_epochs=3, **TINY)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        fit("v3_small", run_dir=tmp_path / "e", init_from=tmp_path / "missing", **TINY)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        evaluate(tmp_path)
    assert not (tmp_path / "a").exists()  # nothing written for a run that never started


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_mobilenets.training import recipe
    from keras_mobilenets.training.loop import fit
    assert recipe.make_strategy("mirrored").num_replicas_in_sync == 2
    result = fit("v3_small", run_dir=sys.argv[1], epochs=1, strategy="mirrored", **json.loads(sys.argv[2]))
    print("REPLICAS", result.model.distribute_strategy.num_replicas_in_sync, "ACCURACY", result.best_accuracy)
""")


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    # A subprocess: logical devices can only be configured before TensorFlow starts.
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "run"), json.dumps(TINY)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REPLICAS 2" in done.stdout
    keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1


@pytest.mark.slow
def test_a_model_built_by_the_caller_trains_and_its_config_says_so(tmp_path):
    model = kmn.build("v1", input_shape=(32, 32, 3), classes=10, alpha=0.25)
    options = {key: value for key, value in TINY.items() if key not in ("alpha", "minimalistic", "image_size")}
    result = fit(model, run_dir=tmp_path / "run", epochs=1, **options)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] is None and config["model_kwargs"] is None and config["image_size"] == 32
    assert result.model is not model and len(result.history) == 1
    with pytest.raises(ValueError, match="freeze_epochs: needs the model as a variant name"):
        fit(model, run_dir=tmp_path / "other", epochs=2, freeze_epochs=1, **options)


@pytest.mark.slow
def test_mixed_precision_trains_with_a_float32_output_and_restores_the_policy(tmp_path):
    result = fit("v1", run_dir=tmp_path / "run", epochs=1, mixed_precision="mixed_bfloat16",
                 **{**TINY, "alpha": 0.25, "minimalistic": False})
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert saved.get_layer("stem_conv").dtype_policy.name == "mixed_bfloat16"
    assert saved.outputs[0].dtype == "float32"
    assert np.isfinite(result.history[0]["loss"])
    assert keras.config.dtype_policy().name == "float32"
