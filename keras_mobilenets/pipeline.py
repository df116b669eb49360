"""`keras-mobilenets pipeline`: data set -> trained model -> QAT -> TFLite -> report, in one go.

Each model gets its own run directory; every stage records its figures in
`pipeline.json` there as soon as it is done, so a re-run of the same command
skips finished stages and resumes the one that was interrupted (training
resumes from its last completed epoch).
"""
import json
import time
from pathlib import Path

from keras_mobilenets.files import write_atomically

# Small defaults for the bundled 8x8 digits: the whole pipeline fits in minutes on 2 cores.
DIGITS_DEFAULTS = {"image_size": 64, "epochs": 8, "qat_epochs": 2, "batch_size": 64}
DEFAULTS = {"image_size": 224, "epochs": 10, "qat_epochs": 3, "batch_size": 64}
STATE = "pipeline.json"


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "pipeline", help="train -> QAT -> TFLite float32 and int8 -> evaluate -> benchmark -> report"
    )
    parser.add_argument("--model", default="v3_small",
                        help="variant, or several separated by commas (default: v3_small)")
    parser.add_argument("--dataset", default="digits",
                        help="digits (bundled, offline; the default), tfds:NAME, or a folder of class sub-folders")
    parser.add_argument("--run", dest="run_dir", default="runs/pipeline", help="output directory (default: runs/pipeline)")
    parser.add_argument("--image-size", type=int, help="input size (default: 64 for digits, else 224)")
    parser.add_argument("--epochs", type=int, help="float training epochs (default: 8 for digits, else 10)")
    parser.add_argument("--qat-epochs", type=int, help="QAT fine-tuning epochs (default: 2 for digits, else 3)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: 64)")
    parser.add_argument("--benchmark-runs", type=int, default=50, help="timed runs per .tflite (default: 50)")
    parser.set_defaults(run=run_command)


def run_command(args):
    models = [name.strip() for name in args.model.split(",") if name.strip()]
    report = run_pipeline(
        models, dataset=args.dataset, run_dir=args.run_dir, image_size=args.image_size,
        epochs=args.epochs, qat_epochs=args.qat_epochs, batch_size=args.batch_size,
        benchmark_runs=args.benchmark_runs,
    )
    print(f"report: {report}")
    return 0


def _settings(dataset, **given):
    defaults = DIGITS_DEFAULTS if dataset == "digits" else DEFAULTS
    return {key: given.get(key) or value for key, value in defaults.items()}


def _stage(state, state_path, name, title, work):
    """Run `work()` unless an earlier run recorded its result; record it atomically."""
    if name in state:
        print(f"  [done before] {title}", flush=True)
        return state[name]
    print(f"  [{len(state) + 1}] {title}", flush=True)
    started = time.perf_counter()
    state[name] = work()
    state.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
    write_atomically(state_path, json.dumps(state, indent=1))
    return state[name]


def run_model(model, run_dir, *, dataset, image_size, epochs, qat_epochs, batch_size, benchmark_runs):
    """All stages for one model in `run_dir`; returns its ModelResult for the report."""
    from keras_mobilenets import cli
    from keras_mobilenets.report import ModelResult, TfliteResult
    from keras_mobilenets.tflite.benchmark import benchmark
    from keras_mobilenets.tflite.evaluate import evaluate as evaluate_tflite
    from keras_mobilenets.training import data, runs
    from keras_mobilenets.training.evaluate import evaluate as evaluate_keras
    from keras_mobilenets.training.fit import fit
    from keras_mobilenets.training.qat import load_qat_model, quantization_aware

    run_dir = Path(run_dir)
    state_path = run_dir / STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    print(f"{model}: {run_dir}", flush=True)

    def train():
        fit(model, run_dir=run_dir, dataset=dataset, epochs=epochs, batch_size=batch_size,
            image_size=image_size, flip=dataset != "digits")
        return {"epochs": epochs}

    def convert(quantization):
        cli.main(["convert", "--run", str(run_dir), "--quantization", quantization])
        return str(run_dir / f"model_{quantization}.tflite")

    def qat():
        quantization_aware(run_dir, epochs=qat_epochs, batch_size=batch_size)
        return {"epochs": qat_epochs}

    def score(tflite_path, reference):
        config = runs.read_config(run_dir)
        splits = data.load(config["dataset"], image_size=config["image_size"], seed=config["seed"],
                           validation_fraction=config["validation_fraction"],
                           test_fraction=config["test_fraction"])
        figures = evaluate_tflite(tflite_path, splits.test, keras_model=reference())
        return {**figures, **benchmark(tflite_path, runs=benchmark_runs)}

    _stage(state, state_path, "train", f"train {model} for {epochs} epochs", train)
    keras_figures = _stage(state, state_path, "evaluate", "evaluate the Keras model on the test split",
                           lambda: evaluate_keras(run_dir))
    float_path = _stage(state, state_path, "convert_float32", "convert to TFLite float32",
                        lambda: convert("float32"))
    _stage(state, state_path, "qat", f"quantization-aware fine-tuning for {qat_epochs} epochs", qat)
    int8_path = _stage(state, state_path, "convert_int8", "convert the QAT model to TFLite int8",
                       lambda: convert("qat-int8"))

    def keras_model():
        import keras

        return keras.saving.load_model(run_dir / "model.keras", compile=False)

    float_figures = _stage(state, state_path, "tflite_float32", "evaluate and benchmark the float32 .tflite",
                           lambda: score(float_path, keras_model))
    int8_figures = _stage(state, state_path, "tflite_int8", "evaluate and benchmark the int8 .tflite",
                          lambda: score(int8_path, lambda: load_qat_model(run_dir)))

    def tflite_result(path, quantization, figures):
        return TfliteResult(path=path, quantization=quantization, top1=figures["top1"], top5=figures["top5"],
                            count=figures["count"], size_bytes=figures["size_bytes"],
                            median_ms=figures["median_ms"], p90_ms=figures["p90_ms"],
                            partitions=figures["partitions"])

    return ModelResult(
        model=model, run_dir=str(run_dir), keras_top1=keras_figures["top1"], keras_top5=keras_figures["top5"],
        float32=tflite_result(float_path, "float32", float_figures),
        int8=tflite_result(int8_path, "int8 (QAT)", int8_figures),
        confusion_matrix_png=keras_figures.get("confusion_matrix_png"),
        seconds=sum(state.get("seconds", {}).values()),
    )


def run_pipeline(models=("v3_small",), *, dataset="digits", run_dir="runs/pipeline", image_size=None,
                 epochs=None, qat_epochs=None, batch_size=None, benchmark_runs=50):
    """Run every stage for each model and write report.html / report.md in run_dir."""
    import keras_mobilenets as kmn
    from keras_mobilenets.report import write_report

    for model in models:
        if model not in kmn.VARIANTS:
            raise ValueError(f"model: unknown variant {model!r}; choose from {', '.join(kmn.VARIANTS)}")
    settings = _settings(dataset, image_size=image_size, epochs=epochs, qat_epochs=qat_epochs,
                         batch_size=batch_size)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = [
        run_model(model, run_dir / model if len(models) > 1 else run_dir, dataset=dataset,
                  benchmark_runs=benchmark_runs, **settings)
        for model in models
    ]
    details = [
        f"data set: {dataset}; image size {settings['image_size']}; {settings['epochs']} float epochs, "
        f"{settings['qat_epochs']} QAT epochs, batch size {settings['batch_size']}",
        "latency: LiteRT on this machine's CPU, 1 thread, XNNPACK, median of timed runs",
        *[f"{result.model}: {result.seconds:.0f} s for all stages" for result in results],
    ]
    return write_report(results, run_dir, title="keras_mobilenets pipeline report", details=details)
