"""The TFLite stage on a run directory: convert a run's model, evaluate a run's file.

The command line (`convert --run`, `evaluate-tflite`) and the pipeline both
call these; the run (training/runs.py `Run`) says which model, data and labels.
"""
import pathlib

from keras_mobilenets.tflite.converter import DEFAULT_SAMPLES, MODES, convert
from keras_mobilenets.tflite.accuracy import evaluate


def as_run(run):
    from keras_mobilenets.training.runs import Run

    return run if isinstance(run, Run) else Run(run)


def convert_run(run, quantization, *, output=None, num_samples=DEFAULT_SAMPLES, input_type="float32",
                output_type="float32"):
    """Convert the run's model (the QAT model for qat-int8) to `output` (default: model_<mode>.tflite).

    int8 calibrates on the run's training split only; the file carries the
    run's labels in its metadata; conversions.json records what it came from.
    """
    if quantization not in MODES:
        raise ValueError(f"quantization: unknown {quantization!r}; choose one of {', '.join(MODES)}")
    run = as_run(run)
    config = run.config
    model = run.source_model(quantization)
    representative = run.splits().train if quantization == "int8" else None
    labels = run.labels()
    name = config.get("model") or model.name
    output = pathlib.Path(output or run.tflite_path(quantization))
    convert(model, output, quantization=quantization, representative_data=representative,
            num_samples=num_samples, input_type=input_type, output_type=output_type,
            metadata={"name": name, "version": "1", "labels": labels,
                      "description": f"{name} image classifier ({len(labels)} classes), {quantization}."
                                     " Made with keras_mobilenets."})
    if output.resolve().parent == run.dir.resolve():  # a file of the run: remember what it came from
        run.record_conversion(output, quantization=quantization, input_type=input_type,
                              output_type=output_type, source="qat_model" if quantization == "qat-int8" else "model")
    return output


def evaluate_run(run, path, *, split="test", limit=None, progress=True, record_predictions=False):
    """Top-1/top-5 of a run's .tflite on the run's own `split`, and its agreement with the model it came from.

    `record_predictions`: also keep each image's predictions in the run
    (`Run.predictions(path)`), so that a report can be drawn again later.
    """
    run = as_run(run)
    source = run.conversions().get(pathlib.Path(path).name, {}).get("source")
    if source is None:
        raise ValueError(f"{path}: not converted from this run by keras_mobilenets (no entry in "
                         f"{run.dir / 'conversions.json'}); convert it with `keras-mobilenets convert --run {run.dir}`"
                         " or evaluate it with --dataset")
    model = run.qat_model() if source == "qat_model" else run.float_model()
    dataset = getattr(run.splits(), split)
    result = evaluate(path, dataset, keras_model=model, limit=limit, progress=progress,
                      per_image=record_predictions)
    result.update(dataset=run.config["dataset"], split=split, compared_with=source)
    if record_predictions:
        run.record_predictions(path, {"dataset": result["dataset"], "split": split, "limit": limit,
                                      "compared_with": source, **result.pop("per_image")})
    return result
