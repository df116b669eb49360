"""TFLite latency and size of every variant, float32 and int8, beside keras.applications.

    python benchmarks/tflite_latency.py [--variants v1 v3_small] [--runs 50] [--json out.json]

All models: random weights, 224x224, 1000 classes, batch 1, converted by
keras_mobilenets.tflite.convert (int8: post-training, 32 random calibration
images), run with LiteRT's XNNPACK delegate on 1 thread, side by side in one
process, interleaved (see measure). Targets (issue 6): ours float32 <= keras.applications; int8 <= 0.6 x
float32 in one partition; int8 file <= 0.3 x float32 file.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

KERAS_APPLICATIONS = {"v1": "MobileNet", "v2": "MobileNetV2",
                      "v3_small": "MobileNetV3Small", "v3_large": "MobileNetV3Large"}


def convert_both(model, name, folder, size):
    """float32 and int8 .tflite files of `model`."""
    from keras_mobilenets.tflite.convert import convert

    calibration = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
    return {mode: convert(model, os.path.join(folder, f"{name}_{mode}.tflite"), quantization=mode,
                          representative_data=calibration if mode == "int8" else None)
            for mode in ("float32", "int8")}


def measure(files, runs, rounds):
    """Benchmark every file in turn, `rounds` times, and keep each file's fastest round.

    Interleaving the models and keeping the best round cancels most of the noise
    of a shared machine: other work slows some rounds, never speeds one up.
    """
    from keras_mobilenets.tflite.benchmark import benchmark

    best = {}
    for _ in range(rounds):
        for key, path in files.items():
            result = benchmark(path, threads=1, runs=runs, warmup=10)
            if key not in best or result["median_ms"] < best[key]["median_ms"]:
                best[key] = result
    return best


def row(name, results):
    f32, int8 = results[(name, "float32")], results[(name, "int8")]
    print(json.dumps({name: {"float32_ms": f32["median_ms"], "int8_ms": int8["median_ms"],
                             "int8_partitions": int8["partitions"]}}), file=sys.stderr, flush=True)
    return {"model": name, "float32": f32, "int8": int8,
            "int8_over_float32": int8["median_ms"] / f32["median_ms"],
            "size_ratio": int8["size_bytes"] / f32["size_bytes"]}


def table(rows):
    lines = ["| model | float32 ms | int8 ms | int8/f32 | partitions f32/int8 | float32 MB | int8 MB | "
             "size int8/f32 | ours/keras.applications f32 | ops outside XNNPACK (int8) | checks |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        f32, int8 = row["float32"], row["int8"]
        checks = []
        if not row["model"].startswith("keras.applications"):
            checks.append("0.6 ok" if row["int8_over_float32"] <= 0.6 else "0.6 FAIL")
            checks.append("1 partition ok" if int8["partitions"] == 1 and not int8["ops_outside_delegate"]
                          else "partition FAIL")
            checks.append("size ok" if row["size_ratio"] <= 0.3 else "size FAIL")
            if "vs_keras_applications" in row:
                checks.append("f32 ok" if row["vs_keras_applications"] <= 1.0 else "f32 FAIL")
        outside = ", ".join(f"{op} x{n}" for op, n in sorted(int8["ops_outside_delegate"].items())) or "-"
        versus = f"{row['vs_keras_applications']:.2f}" if "vs_keras_applications" in row else ""
        lines.append(
            f"| {row['model']} | {f32['median_ms']:.2f} | {int8['median_ms']:.2f} | "
            f"{row['int8_over_float32']:.2f} | {f32['partitions']}/{int8['partitions']} | "
            f"{f32['size_bytes'] / 1e6:.2f} | {int8['size_bytes'] / 1e6:.2f} | {row['size_ratio']:.2f} | "
            f"{versus} | {outside} | {', '.join(checks)} |")
    return "\n".join(lines)


def main(argv=None):
    import keras_mobilenets as kmn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(kmn.VARIANTS), choices=kmn.VARIANTS)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the fastest counts")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args(argv)

    import keras

    shape = (args.size, args.size, 3)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            names = {variant: kmn.build(variant, input_shape=shape, classes=1000)}
            if variant in KERAS_APPLICATIONS:
                builder = getattr(keras.applications, KERAS_APPLICATIONS[variant])
                names[f"keras.applications {KERAS_APPLICATIONS[variant]}"] = builder(
                    input_shape=shape, weights=None, classes=1000)
            files = {(name, mode): path for name, model in names.items()
                     for mode, path in convert_both(model, name.replace(" ", "_"), folder, args.size).items()}
            results = measure(files, args.runs, args.rounds)
            group = [row(name, results) for name in names]
            if len(group) == 2:
                group[0]["vs_keras_applications"] = (group[0]["float32"]["median_ms"]
                                                     / group[1]["float32"]["median_ms"])
            rows.extend(group)
            for path in files.values():
                os.remove(path)
            keras.backend.clear_session()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
