"""TFLite latency and size of every variant, float32 and int8, beside keras.applications.

    python benchmarks/tflite_latency.py [--variants v1 v3_small] [--runs 50] [--json out.json]

All models: random weights, 224x224, 1000 classes, batch 1, converted by
keras_mobilenets.tflite.convert (int8: post-training, 32 random calibration
images), run with LiteRT's XNNPACK delegate on 1 thread, side by side in one
process. Targets (issue 6): ours float32 <= keras.applications; int8 <= 0.6 x
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


def measure(model, name, folder, runs, size):
    from keras_mobilenets.tflite.benchmark import benchmark
    from keras_mobilenets.tflite.convert import convert

    calibration = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
    row = {"model": name}
    for mode in ("float32", "int8"):
        path = os.path.join(folder, f"{name}_{mode}.tflite")
        convert(model, path, quantization=mode, representative_data=calibration if mode == "int8" else None)
        row[mode] = benchmark(path, threads=1, runs=runs, warmup=10)
        os.remove(path)
    row["int8_over_float32"] = row["int8"]["median_ms"] / row["float32"]["median_ms"]
    row["size_ratio"] = row["int8"]["size_bytes"] / row["float32"]["size_bytes"]
    print(json.dumps({name: {m: {k: row[m][k] for k in ("median_ms", "partitions", "ops_outside_delegate")}
                             for m in ("float32", "int8")}}), file=sys.stderr, flush=True)
    return row


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
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args(argv)

    import keras

    shape = (args.size, args.size, 3)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            ours = measure(kmn.build(variant, input_shape=shape, classes=1000), variant, folder, args.runs, args.size)
            rows.append(ours)
            if variant in KERAS_APPLICATIONS:
                builder = getattr(keras.applications, KERAS_APPLICATIONS[variant])
                theirs = measure(builder(input_shape=shape, weights=None, classes=1000),
                                 f"keras.applications {KERAS_APPLICATIONS[variant]}", folder, args.runs, args.size)
                ours["vs_keras_applications"] = ours["float32"]["median_ms"] / theirs["float32"]["median_ms"]
                rows.append(theirs)
            keras.backend.clear_session()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
