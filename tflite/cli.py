"""Sub-commands of the TFLite stage: convert, evaluate-tflite, benchmark (tflite/runs.py does the work on runs).

`evaluate-tflite` is this stage's half of `evaluate`: the training stage owns
`evaluate` for Keras models and can hand .tflite paths to `evaluate_command`
(same arguments: model, --dataset, --split, --json; same JSON keys).
TensorFlow is imported inside the commands, so `--help` stays fast.
"""
import json
import os

from keras_mobilenets.tflite.converter import INPUT_TYPES, MODES, OUTPUT_TYPES, DEFAULT_SAMPLES


def add_commands(subparsers):
    convert = subparsers.add_parser(
        "convert", help="convert a run's model (or a .keras file) to .tflite with Android metadata")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="run_dir", metavar="DIR", help="run directory (config.json, model.keras, labels.txt)")
    source.add_argument("model", nargs="?", metavar="MODEL.keras", help="a saved Keras 3 model")
    convert.add_argument("--quantization", required=True, choices=MODES,
                         help="float32, float16, dynamic (weights int8), int8 (post-training, calibrated on the "
                              "training split), qat-int8 (the run's QAT model)")
    convert.add_argument("--output", metavar="FILE.tflite",
                         help="default: model_<quantization>.tflite in the run directory (or beside MODEL.keras)")
    convert.add_argument("--dataset", metavar="SOURCE",
                         help="int8 calibration data for a MODEL.keras file (a run calibrates on its training split)")
    convert.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help=f"int8 calibration images (default: {DEFAULT_SAMPLES})")
    convert.add_argument("--input-type", default="float32", choices=INPUT_TYPES,
                         help="type of the image input; integer types need an int8 mode (default: float32)")
    convert.add_argument("--output-type", default="float32", choices=OUTPUT_TYPES,
                         help="type of the class probabilities; integer types need an int8 mode (default: float32)")
    convert.add_argument("--labels", metavar="FILE", help="labels.txt, one class a line, for a MODEL.keras file (a run uses its own)")
    # `run` is the dispatcher's handler, so --run is stored as run_dir.
    convert.set_defaults(run=convert_command)

    evaluate = subparsers.add_parser(
        "evaluate-tflite", help="top-1/top-5 of a .tflite on a data set split (LiteRT), agreement with Keras")
    evaluate.add_argument("model", metavar="MODEL.tflite", help="a .tflite file (in a run: scored on the run's split)")
    evaluate.add_argument("--dataset", metavar="SOURCE", help="default: the run's, when the file is in a run")
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"),
                          help="data split (default: test)")
    evaluate.add_argument("--limit", type=int, help="evaluate the first N images only")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=evaluate_command)

    benchmark = subparsers.add_parser(
        "benchmark", help="latency, size and XNNPACK partitions of a .tflite (LiteRT CPU)")
    benchmark.add_argument("model", metavar="MODEL.tflite", help="a .tflite file")
    benchmark.add_argument("--threads", type=int, default=1, help="CPU threads of the interpreter (default: 1)")
    benchmark.add_argument("--runs", type=int, default=100, help="timed invocations (default: 100)")
    benchmark.add_argument("--warmup", type=int, default=10, help="untimed invocations first (default: 10)")
    benchmark.add_argument("--json", action="store_true", help="print one JSON object")
    benchmark.set_defaults(run=benchmark_command)


def convert_command(args):
    if args.run_dir:
        from keras_mobilenets.tflite.runs import convert_run

        if args.dataset or args.labels:
            raise ValueError("--dataset and --labels are for a MODEL.keras file; a run uses its own data and labels")
        output = convert_run(args.run_dir, args.quantization, output=args.output, num_samples=args.samples,
                             input_type=args.input_type, output_type=args.output_type)
        print(output)
        return 0
    if args.quantization == "qat-int8":
        raise ValueError("--quantization qat-int8 needs --run DIR (the QAT stage saves the QAT model in the run)")
    import keras

    from keras_mobilenets.tflite.converter import convert

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such Keras model: {args.model}")
    model = keras.saving.load_model(args.model)
    size = int(model.inputs[0].shape[1])
    representative = _split(args.dataset, "train", size) if args.quantization == "int8" else None
    labels = _labels(args.labels, model)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.model)),
                                         f"model_{args.quantization}.tflite")
    convert(model, output, quantization=args.quantization, representative_data=representative,
            num_samples=args.samples, input_type=args.input_type, output_type=args.output_type,
            metadata={"name": model.name, "version": "1", "labels": labels,
                      "description": f"{model.name} image classifier ({len(labels)} classes), "
                                     f"{args.quantization}. Made with keras_mobilenets."})
    print(output)
    return 0


def evaluate_command(args):
    """A file of a run is scored on the run's own split against the model it was converted from."""
    from keras_mobilenets.tflite.accuracy import evaluate
    from keras_mobilenets.training.runs import Run

    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such .tflite file: {args.model}")
    run = Run.containing(args.model)
    if run is not None and args.dataset is None:
        from keras_mobilenets.tflite.runs import evaluate_run

        result = evaluate_run(run, args.model, split=args.split, limit=args.limit, progress=not args.json)
    else:
        from keras_mobilenets.tflite.latency import load_interpreter

        height, width = [int(size) for size in load_interpreter(args.model).get_input_details()[0]["shape"][1:3]]
        if height != width:
            raise ValueError(f"{args.model}: the data sets load square images, this model takes {height}x{width}")
        result = evaluate(args.model, _split(args.dataset, args.split, height), limit=args.limit,
                          progress=not args.json)
        result.update(dataset=args.dataset, split=args.split)
    _print(result, args.json)
    return 0


def benchmark_command(args):
    from keras_mobilenets.tflite.latency import benchmark

    _print(benchmark(args.model, threads=args.threads, runs=args.runs, warmup=args.warmup), args.json)
    return 0


def _print(result, as_json):
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def _split(dataset, split, image_size):
    """One split of a data source given on the command line, for a model outside a run."""
    if dataset is None:
        raise ValueError("--dataset SOURCE is needed: the model is not in a run directory with a config.json")
    from keras_mobilenets.training import data

    return getattr(data.load(dataset, image_size=image_size), split)


def _labels(labels_file, model):
    """Class names: --labels, else the class indices."""
    if labels_file is None:
        return [str(index) for index in range(int(model.outputs[0].shape[-1]))]
    if not os.path.isfile(labels_file):
        raise FileNotFoundError(f"no such labels file: {labels_file}")
    with open(labels_file) as f:
        return [line.rstrip("\n") for line in f if line.strip()]
