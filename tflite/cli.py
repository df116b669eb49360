"""Sub-commands of the TFLite stage: convert, evaluate-tflite, benchmark.

`evaluate-tflite` is this stage's half of `evaluate`: the training stage owns
`evaluate` for Keras models and can hand .tflite paths to `evaluate_command`
(same arguments: model, --dataset, --split, --json; same JSON keys).
TensorFlow is imported inside the commands, so `--help` stays fast.
"""
import json
import os

from keras_mobilenets.tflite.convert import INPUT_TYPES, MODES, OUTPUT_TYPES, DEFAULT_SAMPLES


def add_commands(subparsers):
    convert = subparsers.add_parser(
        "convert", help="convert a run's model (or a .keras file) to .tflite with Android metadata")
    source = convert.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", dest="run_dir", metavar="DIR", help="run directory (config.json, model.keras, labels.txt)")
    source.add_argument("model", nargs="?", metavar="MODEL.keras", help="a saved Keras 3 model")
    convert.add_argument("--quantization", required=True, choices=MODES)
    convert.add_argument("--output", metavar="FILE.tflite",
                         help="default: model_<quantization>.tflite in the run directory (or beside MODEL.keras)")
    convert.add_argument("--dataset", metavar="SOURCE",
                         help="representative data for int8 (default: the run's data set)")
    convert.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="int8 calibration images")
    convert.add_argument("--input-type", default="float32", choices=INPUT_TYPES)
    convert.add_argument("--output-type", default="float32", choices=OUTPUT_TYPES)
    convert.add_argument("--labels", metavar="FILE", help="labels.txt, one class a line (default: the run's)")
    # `run` is the dispatcher's handler, so --run is stored as run_dir.
    convert.set_defaults(run=convert_command)

    evaluate = subparsers.add_parser(
        "evaluate-tflite", help="top-1/top-5 of a .tflite on a data set split (LiteRT), agreement with Keras")
    evaluate.add_argument("model", metavar="MODEL.tflite")
    evaluate.add_argument("--dataset", metavar="SOURCE", help="default: the run's, when the file is in a run")
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--limit", type=int, help="evaluate the first N images only")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=evaluate_command)

    benchmark = subparsers.add_parser(
        "benchmark", help="latency, size and XNNPACK partitions of a .tflite (LiteRT CPU)")
    benchmark.add_argument("model", metavar="MODEL.tflite")
    benchmark.add_argument("--threads", type=int, default=1)
    benchmark.add_argument("--runs", type=int, default=100)
    benchmark.add_argument("--warmup", type=int, default=10)
    benchmark.add_argument("--json", action="store_true", help="print one JSON object")
    benchmark.set_defaults(run=benchmark_command)


def convert_command(args):
    from keras_mobilenets.tflite.convert import convert

    run_dir = args.run_dir
    if run_dir and not os.path.isfile(os.path.join(run_dir, "config.json")):
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    config = _read_config(run_dir) if run_dir else {}
    if args.quantization == "qat-int8":
        if not run_dir:
            raise ValueError("--quantization qat-int8 needs --run DIR (the QAT stage loads the run's QAT model)")
        from keras_mobilenets.training.qat import load_qat_model

        model = load_qat_model(run_dir)
    else:
        import keras

        path = os.path.join(run_dir, "model.keras") if run_dir else args.model
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such Keras model: {path}")
        model = keras.saving.load_model(path)
    representative = None
    if args.quantization == "int8":
        representative = _split(args.dataset, config, "train", _image_size(model, config))
    labels = _labels(args.labels, run_dir, config, model)
    output = args.output or os.path.join(run_dir or os.path.dirname(os.path.abspath(args.model)),
                                         f"model_{args.quantization}.tflite")
    name = config.get("model") or model.name
    convert(model, output, quantization=args.quantization, representative_data=representative,
            num_samples=args.samples, input_type=args.input_type, output_type=args.output_type,
            metadata={"name": name, "version": "1",
                      "description": f"{name} image classifier ({len(labels)} classes), {args.quantization}."
                                     " Made with keras_mobilenets.",
                      "labels": labels})
    print(output)
    return 0


def evaluate_command(args):
    from keras_mobilenets.tflite.evaluate import evaluate

    run_dir = os.path.dirname(os.path.abspath(args.model))
    config = _read_config(run_dir) if os.path.isfile(os.path.join(run_dir, "config.json")) else {}
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no such .tflite file: {args.model}")
    from keras_mobilenets.tflite.benchmark import load_interpreter

    height, width = [int(size) for size in load_interpreter(args.model).get_input_details()[0]["shape"][1:3]]
    if height != width:
        raise ValueError(f"{args.model}: the data sets load square images, this model takes {height}x{width}")
    dataset = _split(args.dataset, config, args.split, config.get("image_size") or height)
    keras_model = None
    if config and os.path.isfile(os.path.join(run_dir, "model.keras")):
        import keras

        keras_model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    result = evaluate(args.model, dataset, keras_model=keras_model, limit=getattr(args, "limit", None),
                      progress=not args.json)
    result.update(dataset=args.dataset or config.get("dataset"), split=args.split)
    _print(result, args.json)
    return 0


def benchmark_command(args):
    from keras_mobilenets.tflite.benchmark import benchmark

    _print(benchmark(args.model, threads=args.threads, runs=args.runs, warmup=args.warmup), args.json)
    return 0


def _print(result, as_json):
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def _read_config(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        return json.load(f)


def _image_size(model, config):
    return config.get("image_size") or int(model.inputs[0].shape[1])


def _split(dataset, config, split, image_size):
    """The (image, label) pairs of one split of `dataset`, or of the run's data set."""
    source = dataset or config.get("dataset")
    if source is None:
        raise ValueError("--dataset SOURCE is needed: the model is not in a run directory with a config.json")
    from keras_mobilenets.training import data

    splits = data.load(source, image_size=image_size, seed=config.get("seed", 0))
    return getattr(splits, split)


def _labels(labels_file, run_dir, config, model):
    """Class names: --labels, else the run's labels.txt or config, else the class indices."""
    path = labels_file or (os.path.join(run_dir, "labels.txt") if run_dir else None)
    if path and os.path.isfile(path):
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    if labels_file:
        raise FileNotFoundError(f"no such labels file: {labels_file}")
    if config.get("class_names"):
        return list(config["class_names"])
    return [str(index) for index in range(int(model.outputs[0].shape[-1]))]
