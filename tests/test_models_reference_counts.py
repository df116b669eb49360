"""Parameter and MAC counts against keras.applications and timm's reference figures."""
import json
from pathlib import Path

import pytest

import keras_mobilenets as kmn

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
KERAS_PARAMS = json.loads((REFERENCE / "keras_applications_params.json").read_text())
FIGURES = json.loads((REFERENCE / "reference_figures.json").read_text())


def _keras_case_id(case):
    mini = "_minimalistic" if case.get("minimalistic") else ""
    return f"{case['variant']}{mini}_{case['alpha']}_{'top' if case['include_top'] else 'notop'}"


@pytest.mark.parametrize("case", KERAS_PARAMS, ids=_keras_case_id)
def test_keras_applications_parameter_counts(case):
    kwargs = {"alpha": case["alpha"], "include_top": case["include_top"]}
    if "minimalistic" in case:
        kwargs["minimalistic"] = case["minimalistic"]
    model = kmn.build(case["variant"], **kwargs)
    weighted = [layer for layer in model.layers if layer.weights]
    assert len(weighted) == case["weighted_layers"]
    assert model.count_params() == case["total_params"]
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    assert trainable == case["trainable_params"]


@pytest.mark.parametrize("variant", sorted(FIGURES["v4"]))
def test_v4_matches_timm_parameters_and_macs(variant):
    figures = FIGURES["v4"][variant]
    size = figures["resolution"]
    profile = kmn.profile(kmn.build(variant, input_shape=(size, size, 3)))
    assert profile.trainable_params == figures["trainable_params"]
    assert abs(profile.total_macs / figures["macs"] - 1) < 0.01


@pytest.mark.parametrize("key", sorted(FIGURES["macs_224"]))
def test_v1_to_v3_macs_at_224(key):
    variant, alpha = key.rsplit("_", 1)
    profile = kmn.profile(kmn.build(variant, alpha=float(alpha)))
    assert abs(profile.total_macs / FIGURES["macs_224"][key] - 1) < 0.01


def test_profile_rows_add_up_and_name_layers():
    profile = kmn.profile(kmn.V3Small(input_shape=(96, 96, 3), classes=7))
    assert sum(row.params for row in profile.layers) == profile.total_params
    assert sum(row.macs for row in profile.layers) == profile.total_macs
    logits = next(row for row in profile.layers if row.name == "head_logits")
    assert logits.params == 1024 * 7 + 7
    assert logits.macs == 1024 * 7
    assert "head_logits" in profile.table()


def test_profile_refuses_variable_input_size():
    with pytest.raises(ValueError, match="fixed input_shape"):
        kmn.profile(kmn.V2(input_shape=(None, None, 3)))
