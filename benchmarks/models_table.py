"""Every variant at its native resolution: parameters, MACs, reference MACs, build time.

    python benchmarks/models_table.py
"""
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_mobilenets as kmn  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "reference_figures.json"


def reference_macs():
    figures = json.loads(REFERENCE.read_text())
    macs = {key.removesuffix("_1.0"): value for key, value in figures["macs_224"].items()}
    macs.update({name: row["macs"] for name, row in figures["v4"].items()})
    return macs


def main():
    reference = reference_macs()
    print("| variant | input | params | MACs | reference MACs | MACs / reference | build s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for variant in kmn.VARIANTS:
        start = time.perf_counter()
        model = kmn.build(variant)
        seconds = time.perf_counter() - start
        profile = kmn.profile(model)
        ref = reference[variant]
        print(
            f"| {variant} | {model.input_shape[1]} | {profile.total_params:,} | {profile.total_macs:,} "
            f"| {ref:,} | {profile.total_macs / ref:.4f} | {seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
