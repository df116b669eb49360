"""`keras-mobilenets train` and `keras-mobilenets evaluate`."""
import json
import os
import re

from keras_mobilenets.training import config


def add_commands(subparsers):
    train = subparsers.add_parser("train", help="train a MobileNet into a run directory (resumes if killed)")
    train.add_argument("--model", default="v3_small", help="variant name (default: v3_small)")
    train.add_argument("--dataset", default="digits",
                       help="digits (bundled, offline), tfds:NAME, or a folder of class sub-folders (default: digits)")
    train.add_argument("--run", dest="run_dir", help="run directory (default: runs/MODEL-DATASET); re-run to resume")
    config.add_arguments(train, shown={"image_size": "224"})
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser("evaluate", help="top-1, top-5 and a confusion matrix (PNG) of a model")
    evaluate.add_argument("model", nargs="?", help="a MODEL.keras file (or give --run)")
    evaluate.add_argument("--run", dest="run_dir", help="a run directory: its model.keras on its own data")
    evaluate.add_argument("--dataset", help="data source (default: the run's)")
    evaluate.add_argument("--split", default="test", help="train, validation or test (default: test)")
    evaluate.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    evaluate.add_argument("--data-dir", help="TFDS data directory (default: TFDS's)")
    evaluate.add_argument("--download", action="store_true", help="let TFDS download the data set (default: no)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=run_evaluate)


def run_train(args):
    if args.strategy == "multi_worker":  # before anything runs a TensorFlow op; fit then uses it
        from keras_mobilenets.training.distributed import multi_worker_strategy
        multi_worker_strategy()
    from keras_mobilenets.training.loop import fit

    slug = re.sub(r"[^A-Za-z0-9_.]+", "_", os.path.basename(args.dataset.rstrip("/")).replace("tfds:", ""))
    result = fit(args.model, args.dataset, run_dir=args.run_dir or os.path.join("runs", f"{args.model}-{slug}"),
                 **config.given(args))
    print(f"{result.run_dir}: best validation top-1 {result.best_accuracy:.4f} at epoch {result.best_epoch}; "
          f"score it with `keras-mobilenets evaluate --run {result.run_dir}`")
    return 0


def run_evaluate(args):
    if (args.model is None) == (args.run_dir is None):
        raise ValueError("give either --run DIR or a MODEL.keras file")
    from keras_mobilenets.training.accuracy import evaluate

    result = evaluate(args.run_dir or args.model, dataset=args.dataset, split=args.split,
                      batch_size=args.batch_size, data_dir=args.data_dir, download=args.download)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']} on {result['dataset']} {result['split']} ({result['count']} images): "
              f"top-1 {result['top1']:.4f}, top-{result['top_k']} {result['top5']:.4f}; "
              f"confusion matrix: {result['confusion_matrix_png']}")
    return 0
