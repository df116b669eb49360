"""QAT vs post-training int8 on the bundled digits data set (issues 5 and 11's accuracy table).

For v3_small, v3_large, v4_conv_small and v4_hybrid_medium, once per seed (each seed its own train / test
split and initialization): train in float, convert with post-training int8
(PTQ), fine-tune with quantization-aware training, convert the QAT model.
Reports test top-1 of each and the int8 files' agreement with the Keras model
they came from, pooled over the seeds (digits is small: one seed's test split
is a few hundred images, where one image moves top-1 by a quarter of a point),
and the XNNPACK partitions of the int8 files.

    .venv/bin/python benchmarks/qat_accuracy.py [--seeds 0 1 2] [--epochs 10] [--qat-epochs 3]
"""
import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _partitions(path):
    from keras_mobilenets.tflite.latency import delegation_report, load_interpreter

    report = delegation_report(load_interpreter(path))
    return report["partitions"], report["ops_outside_delegate"]


def run_once(model, seed, root, args):
    """One seed: test-set correct counts of float Keras, PTQ int8 and QAT int8, and agreements."""
    import keras

    from keras_mobilenets.tflite.converter import convert
    from keras_mobilenets.tflite.accuracy import evaluate
    from keras_mobilenets.training import data, loop, qat

    run_dir = pathlib.Path(root) / f"{model}_seed{seed}"
    loop.fit(model, "digits", run_dir=run_dir, epochs=args.epochs, image_size=args.image_size,
            batch_size=64, seed=seed, test_fraction=args.test_fraction, verbose=0)
    splits = data.load("digits", image_size=args.image_size, seed=seed, test_fraction=args.test_fraction)
    float_model = keras.saving.load_model(run_dir / "model.keras")  # best by validation: QAT's start
    test = data.pipeline(splits.test, 64, training=False, one_hot_classes=10)
    float_top1 = float_model.evaluate(test, verbose=0, return_dict=True)["accuracy"]

    ptq_path = convert(float_model, run_dir / "ptq_int8.tflite", quantization="int8",
                       representative_data=splits.train, input_type="uint8", output_type="int8")
    ptq = evaluate(ptq_path, splits.test, keras_model=float_model, progress=False)
    qat_model = qat.quantization_aware_run(run_dir, epochs=args.qat_epochs, verbose=0)
    qat_path = convert(qat_model, run_dir / "qat_int8.tflite", quantization="qat-int8",
                       input_type="uint8", output_type="int8")
    qat_result = evaluate(qat_path, splits.test, keras_model=qat_model, progress=False)
    count = qat_result["count"]
    result = {"count": count, "float": round(float_top1 * count), "ptq": round(ptq["top1"] * count),
              "qat": round(qat_result["top1"] * count),
              "ptq_agree": round(ptq["agreement_top1"] * count),
              "qat_agree": round(qat_result["agreement_top1"] * count),
              "parts": (_partitions(ptq_path), _partitions(qat_path))}
    print(f"{model} seed {seed}: {result}", flush=True)
    return result


def summarize(model, results):
    total = sum(r["count"] for r in results)
    pooled = {key: 100 * sum(r[key] for r in results) / total
              for key in ("float", "ptq", "qat", "ptq_agree", "qat_agree")}
    lowest = {key: min(100 * r[key] / r["count"] for r in results) for key in ("qat_agree", "ptq_agree")}
    per_seed = ", ".join(f"{100 * (r['qat'] - r['float']) / r['count']:+.1f}" for r in results)
    files = []
    for index in (0, 1):  # PTQ, QAT: partitions and the ops left outside XNNPACK, over all seeds
        partitions = sorted({r["parts"][index][0] for r in results})
        outside = sorted({op for r in results for op in r["parts"][index][1]})
        files.append(f"{'/'.join(map(str, partitions))} {{{', '.join(outside)}}}" if outside
                     else "/".join(map(str, partitions)))
    return (f"| {model} | {pooled['float']:.1f} | {pooled['ptq']:.1f} | {pooled['qat']:.1f} | "
            f"{pooled['qat'] - pooled['float']:+.1f} ({per_seed}) | "
            f"{pooled['qat_agree']:.1f} (lowest {lowest['qat_agree']:.1f}) | "
            f"{pooled['ptq_agree']:.1f} (lowest {lowest['ptq_agree']:.1f}) | {files[0]} / {files[1]} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3, help="QAT fine-tuning epochs")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--models", nargs="+", default=["v3_small", "v3_large", "v4_conv_small", "v4_hybrid_medium"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        results = {model: [run_once(model, seed, root, args) for seed in args.seeds] for model in args.models}
    images = sum(r["count"] for r in results[args.models[0]])
    print(f"\ndigits, seeds {args.seeds} (test split {args.test_fraction:.0%}: {images} test images in all), "
          f"{args.image_size}px, {args.epochs} float epochs + {args.qat_epochs} QAT epochs; top-1 in %, pooled")
    print("| model | float Keras | PTQ int8 TFLite | QAT int8 TFLite | QAT int8 - float (per seed) "
          "| QAT int8 vs QAT Keras agreement (lowest seed) | PTQ int8 vs float Keras agreement (lowest seed) "
          "| partitions PTQ / QAT (ops outside) |")
    print("|---|---|---|---|---|---|---|---|")
    for model, model_results in results.items():
        print(summarize(model, model_results))


if __name__ == "__main__":
    main()
