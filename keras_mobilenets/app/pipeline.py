"""`keras-mobilenets pipeline`: data set -> trained model -> QAT -> TFLite -> report, in one go.

Each model gets its own run directory; every stage records its figures in
the run's pipeline.json as soon as it is done, with the settings the run was
made with, so a re-run of the same command skips finished stages and resumes
the one that was interrupted (training resumes from its last completed
epoch). A re-run with other settings is refused with the list of changes;
with `redo=True` (--redo) the first stage a change touches and every stage
after it are done again.
"""
import json
import shutil
import sys
import time
from pathlib import Path

from keras_mobilenets.files import write_atomically
from keras_mobilenets.training import config as train_config

# Small defaults for the bundled 8x8 digits: the whole pipeline fits in minutes on 2 cores
# (and no flips: digits are not mirror-symmetric). Other training settings: TrainConfig's.
DIGITS_DEFAULTS = {"image_size": 64, "epochs": 8, "qat_epochs": 2, "batch_size": 64, "flip": False}
DEFAULTS = {"image_size": 224, "epochs": 10, "qat_epochs": 3, "batch_size": 64}
# The settings each stage depends on; a change redoes that stage and every later one.
STAGE_SETTINGS = {
    "train": ("dataset", *train_config.TRAINED_BY),
    "qat": ("qat_epochs",),
    "benchmark": ("benchmark_runs",),
}
FILES = (("float32", "float32"), ("int8", "int8 (post-training)"), ("qat-int8", "int8 (QAT)"))
STAGES = ("train", "evaluate", "convert_float32", "convert_int8", "qat", "convert_qat-int8",
          "tflite_float32", "tflite_int8", "tflite_qat-int8")
FIRST_STAGE = {"train": "train", "qat": "qat", "benchmark": "tflite_float32"}


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "pipeline", help="train -> QAT -> TFLite float32, int8 and QAT int8 -> evaluate -> benchmark -> report"
    )
    parser.add_argument("--model", default="v3_small",
                        help="variant, or several separated by commas (default: v3_small)")
    parser.add_argument("--dataset", default="digits",
                        help="digits (bundled, offline; the default), tfds:NAME, or a folder of class sub-folders")
    parser.add_argument("--run", dest="run_dir", default="runs/pipeline", help="output directory (default: runs/pipeline)")
    parser.add_argument("--qat-epochs", type=int, help="QAT fine-tuning epochs (default: 2 for digits, else 3)")
    train_config.add_arguments(parser, shown={
        "image_size": "64 for digits, else 224", "epochs": "8 for digits, else 10",
        "flip": "on, off for digits"})
    parser.add_argument("--benchmark-runs", type=int, default=50, help="timed runs per .tflite (default: 50)")
    parser.add_argument("--redo", action="store_true",
                        help="on a run made with other settings, redo the stages they change (default: refuse)")
    parser.set_defaults(run=run_command)

    report = subparsers.add_parser("report", help="draw a pipeline run's report.html and report.md again "
                                                  "from what the run recorded (no training, no evaluation)")
    report.add_argument("--run", dest="run_dir", default="runs/pipeline",
                        help="the pipeline's --run directory (default: runs/pipeline)")
    report.add_argument("--screenshot", metavar="FILE.png",
                        help="also take a screenshot of report.html in headless Chromium (needs the chromium "
                             "package and the playwright Python package)")
    report.add_argument("--width", type=int, default=1280, help="screenshot width in CSS pixels (default: 1280)")
    report.add_argument("--height", type=int,
                        help="screenshot height: the top of the page only (default: the whole page)")
    report.set_defaults(run=report_command)


def run_command(args):
    models = [name.strip() for name in args.model.split(",") if name.strip()]
    report = run_pipeline(models, dataset=args.dataset, run_dir=args.run_dir, qat_epochs=args.qat_epochs,
                          benchmark_runs=args.benchmark_runs, redo=args.redo, **train_config.given(args))
    print(f"report: {report}")
    return 0


def settings_for(dataset, *, benchmark_runs=50, **given):
    """Every setting of a pipeline run, defaults filled in (what the run records and the report states)."""
    settings = {"dataset": str(dataset), "benchmark_runs": benchmark_runs,
                **{name: field.default for name, field in train_config.FIELDS.items()},
                **(DIGITS_DEFAULTS if dataset == "digits" else DEFAULTS)}
    settings.update({key: value for key, value in given.items() if value is not None})
    return settings


def _changes(old, new):
    keys = [key for stage_keys in STAGE_SETTINGS.values() for key in stage_keys]
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def _check_settings(state, settings, run_dir, redo):
    """Refuse other settings than the run's, or (redo) forget the stages they change; returns the state."""
    recorded = state.get("settings")
    changes = [] if recorded is None else _changes(recorded, settings)
    if not changes:  # download (how the data arrives) changes no stage
        return state
    if not redo:
        raise ValueError(f"run {run_dir} was made with other settings ({'; '.join(changes)}); run the same "
                         "command to resume it, pass --redo to redo the stages these change, or pick another --run")
    first = next(stage for stage, keys in STAGE_SETTINGS.items()
                 if any(recorded.get(key) != settings.get(key) for key in keys))
    print(f"  settings changed ({'; '.join(changes)}): redoing from the {first} stage on", flush=True)
    if first == "train":
        _forget_training(Path(run_dir))
    kept = STAGES[:STAGES.index(FIRST_STAGE[first])]
    return {key: value for key, value in state.items() if key in kept or key == "seconds"}


def _forget_training(run_dir):
    """Removes a run's training files so that it trains afresh with the new settings (--redo)."""
    from keras_mobilenets.training import runs

    for name in (runs.CONFIG, runs.STATE, runs.MODEL, runs.HISTORY, runs.QAT_MODEL, runs.QAT_HISTORY,
                 runs.CONVERSIONS, runs.PIPELINE):
        (run_dir / name).unlink(missing_ok=True)
    for name in (runs.CHECKPOINTS, runs.LOGS, runs.QAT_BACKUP):
        shutil.rmtree(run_dir / name, ignore_errors=True)


class _Stages:
    """Runs each stage once, numbering them, and records its result in pipeline.json atomically."""

    def __init__(self, state, path, total):
        self.state, self.path, self.total, self.number = state, path, total, 0

    def __call__(self, name, title, work):
        self.number += 1
        step = f"[{self.number}/{self.total}]"
        if name in self.state:
            print(f"  {step} done before: {title}", flush=True)
            return self.state[name]
        print(f"  {step} {title}", flush=True)
        started = time.perf_counter()
        self.state[name] = work()
        self.state.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        write_atomically(self.path, json.dumps(self.state, indent=1))
        return self.state[name]


def run_model(model, run_dir, settings, *, redo=False):
    """All stages for one model in `run_dir`; returns its ModelResult for the report."""
    from keras_mobilenets.tflite.latency import benchmark
    from keras_mobilenets.tflite.runs import convert_run, evaluate_run
    from keras_mobilenets.training import qat, runs
    from keras_mobilenets.training.accuracy import evaluate as evaluate_keras
    from keras_mobilenets.training.loop import fit

    run = runs.Run(run_dir)
    state_path = run.path(runs.PIPELINE)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    state = _check_settings(state, settings, run_dir, redo)
    for quantization, _ in FILES:  # evaluated before the report kept per-image predictions: evaluate again
        if not run.predictions_path(run.tflite_path(quantization)).is_file():
            state.pop(f"tflite_{quantization}", None)
    resuming = bool(state) or run.path(runs.STATE).is_file()
    print(f"{model}: {run_dir}{' (resuming)' if resuming else ''}", flush=True)
    state["settings"] = settings
    stage = _Stages(state, state_path, total=len(STAGES))

    def train():
        fit(model, settings["dataset"], run_dir=run_dir, **{name: settings[name] for name in train_config.NAMES})
        return {"epochs": settings["epochs"]}

    def qat_fine_tune():
        chosen = {"epochs": settings["qat_epochs"], "batch_size": settings["batch_size"],
                  "learning_rate": qat.LEARNING_RATE, "batch_norm": "frozen"}
        qat.quantization_aware_run(run_dir, **chosen)
        return chosen  # what the report states as the QAT settings

    def score(quantization):
        path = run.tflite_path(quantization)
        return {**evaluate_run(run, path, progress=False, record_predictions=True),
                **benchmark(path, runs=settings["benchmark_runs"]),
                "median_ms_2_threads": benchmark(path, threads=2, runs=settings["benchmark_runs"])["median_ms"]}

    stage("train", f"train {model} for {settings['epochs']} epochs", train)
    stage("evaluate", "evaluate the Keras model on the test split", lambda: evaluate_keras(run_dir))
    for quantization, title in FILES[:2]:
        stage(f"convert_{quantization}", f"convert to TFLite {title}",
              lambda q=quantization: str(convert_run(run, q)))
    stage("qat", f"quantization-aware fine-tuning for {settings['qat_epochs']} epochs", qat_fine_tune)
    stage("convert_qat-int8", "convert the QAT model to TFLite int8", lambda: str(convert_run(run, "qat-int8")))
    for quantization, title in FILES:
        stage(f"tflite_{quantization}", f"evaluate and benchmark the {title} .tflite", lambda q=quantization: score(q))
    return model_result(run_dir)


def model_result(run_dir):
    """A finished run's ModelResult for the report, from what its stages recorded (nothing is evaluated again)."""
    import keras_mobilenets as kmn
    from keras_mobilenets.app.report import ModelResult, TfliteResult
    from keras_mobilenets.training import runs

    run = runs.Run(run_dir)
    state = json.loads(run.path(runs.PIPELINE).read_text())
    missing = [name for name in STAGES if name not in state]
    if missing:
        raise ValueError(f"run {run_dir}: the pipeline has not finished ({', '.join(missing)} to do); "
                         "run the same `keras-mobilenets pipeline` command again to finish it")

    def tflite_result(quantization, title):
        found = state[f"tflite_{quantization}"]
        path = run.tflite_path(quantization)
        return TfliteResult(path=str(path), quantization=title, top1=found["top1"], top5=found["top5"],
                            count=found["count"], size_bytes=found["size_bytes"], median_ms=found["median_ms"],
                            p90_ms=found["p90_ms"], partitions=found["partitions"],
                            agreement=found["agreement_top1"], compared_with=found["compared_with"],
                            median_ms_2_threads=found["median_ms_2_threads"], predictions=run.predictions(path))

    config = run.config
    profile = kmn.profile(run.float_model())
    return ModelResult(
        model=config["model"], run_dir=str(run_dir), keras_top1=state["evaluate"]["top1"],
        keras_top5=state["evaluate"]["top5"], files=[tflite_result(*file) for file in FILES],
        class_names=run.labels(), training=config, qat=state["qat"], params=profile.total_params,
        macs=profile.total_macs, seconds=sum(state.get("seconds", {}).values()),
    )


def run_pipeline(models=("v3_small",), *, dataset="digits", run_dir="runs/pipeline", redo=False, **given):
    """Run every stage for each model and write report.html / report.md in run_dir.

    `given`: qat_epochs, benchmark_runs and the training settings of
    TrainConfig (training/config.py); None: the default.
    """
    import keras_mobilenets as kmn

    for model in models:
        if model not in kmn.VARIANTS:
            raise ValueError(f"model: unknown variant {model!r}; choose from {', '.join(kmn.VARIANTS)}")
    allowed = ("qat_epochs", "benchmark_runs", *train_config.NAMES)
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"unknown pipeline option(s) {', '.join(unknown)}; the options are: {', '.join(allowed)}")
    settings = settings_for(dataset, **{key: value for key, value in given.items() if value is not None})
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = [run_model(model, run_dir / model if len(models) > 1 else run_dir, settings, redo=redo)
               for model in models]
    return write_pipeline_report(run_dir, results)


def write_pipeline_report(out_dir, results):
    """report.html and report.md in out_dir for the models' finished runs."""
    from keras_mobilenets.app.report import write_report
    from keras_mobilenets.training.runs import PIPELINE

    # The settings that produced the files, as the runs recorded them (the same for every model).
    recorded = json.loads((Path(results[0].run_dir) / PIPELINE).read_text())["settings"]
    return write_report(results, out_dir, title="keras_mobilenets pipeline report", settings=recorded)


def pipeline_runs(run_dir):
    """The model runs of a pipeline's --run folder: itself (one model), or its sub-folders (several)."""
    from keras_mobilenets.training.runs import PIPELINE

    run_dir = Path(run_dir)
    if (run_dir / PIPELINE).is_file():
        return [run_dir]
    found = sorted(folder for folder in run_dir.glob("*") if (folder / PIPELINE).is_file())
    if not found:
        raise FileNotFoundError(f"run: {run_dir} holds no pipeline run (no {PIPELINE} in it or its sub-folders); "
                                "make one with `keras-mobilenets pipeline --run DIR`")
    return found


def report_command(args):
    """Draws a finished pipeline run's report again from what it recorded; optionally screenshots it."""
    results = [model_result(folder) for folder in pipeline_runs(args.run_dir)]
    report = write_pipeline_report(args.run_dir, results)
    print(f"report: {report}")
    if args.screenshot:
        from keras_mobilenets.app.report_browser import look_at

        seen = look_at(report, screenshots=[(args.screenshot, args.width, args.height)])
        print(f"screenshot: {args.screenshot}")
        for problem in seen["problems"]:
            print(f"keras-mobilenets report: in the browser: {problem}", file=sys.stderr)
        return 1 if seen["problems"] else 0
    return 0
