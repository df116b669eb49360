"""QAT vs post-training int8 on the bundled digits data set (issue 5's accuracy table).

For v3_small and v4_conv_small: train in float, convert with post-training
int8 (PTQ), fine-tune with quantization-aware training, convert the QAT model;
report test top-1 of each, the int8 files' agreement with the QAT Keras model,
and the XNNPACK partitions of both int8 files.

    .venv/bin/python benchmarks/qat_accuracy.py [--epochs 10] [--qat-epochs 3] [--image-size 64]
"""
import argparse
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _partitions(path):
    from keras_mobilenets.tflite.benchmark import delegation_report, load_interpreter

    report = delegation_report(load_interpreter(path))
    return report["partitions"], report["ops_outside_delegate"]


def run_variant(model, root, args):
    import keras

    from keras_mobilenets.tflite.convert import convert
    from keras_mobilenets.tflite.evaluate import evaluate
    from keras_mobilenets.training import data, fit, qat

    run_dir = pathlib.Path(root) / model
    fit.fit(model, run_dir=run_dir, dataset="digits", epochs=args.epochs,
            image_size=args.image_size, batch_size=64, verbose=0)
    splits = data.load("digits", image_size=args.image_size, seed=0)
    float_model = keras.saving.load_model(run_dir / "model.keras")  # best by validation: QAT's start
    test = data.pipeline(splits.test, 64, training=False).map(lambda x, y: (x, keras.ops.one_hot(y, 10)))
    float_top1 = float_model.evaluate(test, verbose=0, return_dict=True)["accuracy"]

    ptq_path = convert(float_model, run_dir / "ptq_int8.tflite", quantization="int8",
                                      representative_data=splits.train, input_type="uint8",
                                      output_type="int8")
    ptq = evaluate(ptq_path, splits.test, keras_model=float_model, progress=False)

    qat_model = qat.quantization_aware(run_dir, epochs=args.qat_epochs, verbose=0)
    qat_path = convert(qat_model, run_dir / "qat_int8.tflite", quantization="qat-int8",
                                      input_type="uint8", output_type="int8")
    qat_result = evaluate(qat_path, splits.test, keras_model=qat_model, progress=False)
    return {
        "model": model, "float": float_top1, "ptq": ptq["top1"], "ptq_agree": ptq["agreement_top1"],
        "qat": qat_result["top1"], "qat_agree": qat_result["agreement_top1"],
        "ptq_parts": _partitions(ptq_path), "qat_parts": _partitions(qat_path),
        "count": qat_result["count"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3, help="QAT fine-tuning epochs")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["v3_small", "v4_conv_small"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [run_variant(model, root, args) for model in args.models]
    print(f"\ndigits test split ({rows[0]['count']} images), {args.image_size}px, "
          f"{args.epochs} float epochs + {args.qat_epochs} QAT epochs; top-1 in %")
    print("| model | float Keras | PTQ int8 TFLite | QAT int8 TFLite | QAT int8 vs QAT Keras agreement "
          "| PTQ int8 vs float Keras agreement | partitions PTQ / QAT (ops outside) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {100 * row['float']:.1f} | {100 * row['ptq']:.1f} | "
              f"{100 * row['qat']:.1f} | {100 * row['qat_agree']:.1f} | {100 * row['ptq_agree']:.1f} | "
              f"{row['ptq_parts'][0]} {row['ptq_parts'][1] or ''} / {row['qat_parts'][0]} "
              f"{row['qat_parts'][1] or ''} |")


if __name__ == "__main__":
    main()
