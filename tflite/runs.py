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
    """Convert a run's model to a .tflite file with the run's labels in its metadata.

    int8 calibrates on the run's training split only; conversions.json
    records what each file of the run came from (what `evaluate_run` compares with).

    Args:
        run: a run directory (path) or a `keras_mobilenets.training.Run`.
        quantization: a mode of `convert`; "qat-int8" converts the run's QAT
            model (qat_model.h5), every other mode its model.keras.
        output: the file to write; None (the default): model_<quantization>.tflite in the run.
        num_samples, input_type, output_type: as for `convert`.

    Returns:
        The path of the .tflite file.

    Raises:
        ValueError: an unknown mode or type (see `convert`).
        FileNotFoundError: not a run directory, or the model to convert is not there yet.
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
    """Top-1/top-5 of a run's .tflite file on the run's own split, and its agreement with its source model.

    Args:
        run: a run directory (path) or a `keras_mobilenets.training.Run`.
        path: a .tflite file `convert_run` wrote for this run.
        split: "test" (the default), "validation" or "train".
        limit, progress: as for `evaluate`.
        record_predictions: also keep each image's predictions in the run
            (`Run.predictions(path)`), so that a report can be drawn again
            later without evaluating. Default False.

    Returns:
        `evaluate`'s dict, with "dataset", "split" and "compared_with"
        ("model" or "qat_model", the model the file came from).

    Raises:
        ValueError: a file this run's conversions.json does not list.
        FileNotFoundError: not a run directory.
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
