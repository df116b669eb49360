"""TFLite latency and size of every variant: float32, post-training int8 and QAT int8, 1 and 2 threads.

    python benchmarks/tflite_latency.py [--variants v1 v3_small] [--runs 50] [--rounds 3] [--json out.json]

Each row names the files a user gets from keras_mobilenets.tflite.converter:
`float32`, `int8` (post-training, 32 random calibration images) and `qat-int8`
(the QAT tf_keras model that keras_mobilenets.training builds for fine-tuning,
its activation ranges calibrated and then moved by training steps on the
calibration images, converted as the pipeline ships it). Random weights (BatchNorm statistics settled on the
calibration images, see settle_statistics), 1000 classes, batch 1,
LiteRT's XNNPACK delegate; all files of a variant are timed side by side in
one process, interleaved round by round (see measure).

Targets (issue 11): QAT int8 <= 1.05 x post-training int8 at 1 and 2 threads;
every int8 file one XNNPACK partition with nothing outside, float only where
XNNPACK has no int8 kernel (HARD_SWISH, SOFTMAX, GELU, and the DEQUANTIZE
before each).
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

MODES = ("float32", "int8", "qat-int8")
THREADS = (1, 2)
ALLOWED_FLOAT_OPS = {"HARD_SWISH", "SOFTMAX", "GELU", "DEQUANTIZE"}


def convert_all(variant, folder, size):
    """The three .tflite files of one random-weight network."""
    import keras_mobilenets as kmn
    from keras_mobilenets.tflite.converter import convert
    from keras_mobilenets.training.qat_model import qat_model_from

    kwargs = {"input_shape": (size, size, 3), "classes": 1000}
    model = kmn.build(variant, **kwargs)
    calibration = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
    settle_statistics(model, calibration)
    files = {mode: convert(model, os.path.join(folder, f"{variant}_{mode}.tflite"), quantization=mode,
                           representative_data=calibration if mode == "int8" else None)
             for mode in ("float32", "int8")}
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices((calibration, np.zeros(len(calibration)))).batch(8)
    # Ranges start calibrated on these images and move with training steps, as in fine-tuning (BN frozen).
    qat_model = qat_model_from(model, variant, calibration_data=batches, **kwargs)
    for batch in np.split(calibration, 4):
        qat_model(batch, training=True)
    files["qat-int8"] = convert(qat_model, os.path.join(folder, f"{variant}_qat-int8.tflite"),
                                quantization="qat-int8")
    return files


def settle_statistics(model, images):
    """Make a random-weight network look trained: BatchNorm statistics of `images`, layer scales 1.

    A random-weight network with fresh statistics (mean 0, variance 1) lets its
    activations vanish block by block (V3-Small at 224 px: ranges of 1e-6 by
    block 5), which no trained network does; its int8 ranges would then be
    nonsense. One forward pass in training mode at momentum 0 gives every
    BatchNorm the statistics of what reaches it, as a trained network has.
    The V4 hybrids' layer scales are set to 1 first, for the same reason
    (at 1e-5 the QAT file of the random network failed to load in XNNPACK).
    """
    from keras_mobilenets.training.batch_norm import batch_norm_layers

    for layer in model.layers:  # the hybrids' layer scales start at 1e-5; trained ones are ~1 to 70
        if type(layer).__name__ == "LayerScale":
            layer.set_weights([np.ones_like(weight) for weight in layer.get_weights()])
    layers = list(batch_norm_layers(model))
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def measure(files, runs, rounds):
    """Benchmark every (file, threads) in turn, `rounds` times, and keep each one's fastest round.

    Interleaving the files and keeping the best round cancels most of the noise
    of a shared machine: other work slows some rounds, never speeds one up.
    """
    from keras_mobilenets.tflite.latency import benchmark

    best = {}
    for _ in range(rounds):
        for mode, path in files.items():
            for threads in THREADS:
                result = benchmark(path, threads=threads, runs=runs, warmup=10)
                key = (mode, threads)
                if key not in best or result["median_ms"] < best[key]["median_ms"]:
                    best[key] = result
    return best


def float_ops(path):
    """Op types of `path` that compute in float (the int8 files' float islands)."""
    from keras_mobilenets.tflite.latency import load_interpreter

    ops = load_interpreter(path)._get_ops_details()
    return sorted({op["op_name"] for op in ops if op["op_name"] != "DELEGATE"
                   and any(np.dtype(t).kind == "f" for t in op["result_types"])})


def row(variant, files, results):
    ms = {key: result["median_ms"] for key, result in results.items()}
    figures = {
        "model": variant,
        "ms": {f"{mode}@{threads}": ms[(mode, threads)] for mode in MODES for threads in THREADS},
        "qat_over_ptq": {threads: ms[("qat-int8", threads)] / ms[("int8", threads)] for threads in THREADS},
        "int8_over_float32": ms[("qat-int8", 1)] / ms[("float32", 1)],
        "partitions": {mode: results[(mode, 1)]["partitions"] for mode in MODES},
        "outside": {mode: results[(mode, 1)]["ops_outside_delegate"] for mode in MODES},
        "float_ops": {mode: float_ops(files[mode]) for mode in ("int8", "qat-int8")},
        "mb": {mode: results[(mode, 1)]["size_bytes"] / 1e6 for mode in MODES},
    }
    print(json.dumps(figures), file=sys.stderr, flush=True)
    return figures


def checks(figures):
    found = []
    for threads in THREADS:
        ratio = figures["qat_over_ptq"][threads]
        found.append(f"QAT/PTQ {threads}t {'ok' if ratio <= 1.05 else 'FAIL'}")
    whole = all(figures["partitions"][mode] == 1 and not figures["outside"][mode] for mode in ("int8", "qat-int8"))
    found.append("1 partition ok" if whole else "partition FAIL")
    floats = set(figures["float_ops"]["qat-int8"]) | set(figures["float_ops"]["int8"])
    found.append("float ops ok" if floats <= ALLOWED_FLOAT_OPS else f"float ops FAIL {sorted(floats)}")
    return ", ".join(found)


def table(rows):
    lines = ["| model | f32 ms 1t | PTQ int8 ms 1t | QAT int8 ms 1t | QAT/PTQ 1t | f32 ms 2t | PTQ int8 ms 2t "
             "| QAT int8 ms 2t | QAT/PTQ 2t | QAT int8/f32 1t | partitions f32/PTQ/QAT | MB f32/PTQ/QAT "
             "| float ops in QAT file | checks |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for figures in rows:
        ms = figures["ms"]
        lines.append(
            f"| {figures['model']} | {ms['float32@1']:.2f} | {ms['int8@1']:.2f} | {ms['qat-int8@1']:.2f} "
            f"| {figures['qat_over_ptq'][1]:.2f} | {ms['float32@2']:.2f} | {ms['int8@2']:.2f} "
            f"| {ms['qat-int8@2']:.2f} | {figures['qat_over_ptq'][2]:.2f} | {figures['int8_over_float32']:.2f} "
            f"| {'/'.join(str(figures['partitions'][m]) for m in MODES)} "
            f"| {'/'.join(format(figures['mb'][m], '.1f') for m in MODES)} "
            f"| {', '.join(figures['float_ops']['qat-int8']) or '-'} | {checks(figures)} |")
    return "\n".join(lines)


def main(argv=None):
    import keras

    import keras_mobilenets as kmn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(kmn.VARIANTS), choices=kmn.VARIANTS)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per round (default: 50)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the fastest counts (default: 3)")
    parser.add_argument("--size", type=int, default=224, help="input size (default: 224)")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            files = convert_all(variant, folder, args.size)
            rows.append(row(variant, files, measure(files, args.runs, args.rounds)))
            for path in files.values():
                os.remove(path)
            keras.backend.clear_session()
    print(f"{args.size}x{args.size}, batch 1, LiteRT XNNPACK, median of {args.runs} runs, "
          f"fastest of {args.rounds} interleaved rounds")
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
