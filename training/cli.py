"""`keras-mobilenets train` and `keras-mobilenets evaluate`."""
import json
import os
import re


def add_commands(subparsers):
    train = subparsers.add_parser("train", help="train a MobileNet into a run directory (resumes if killed)")
    train.add_argument("--model", default="v3_small", help="variant name (default: v3_small)")
    train.add_argument("--alpha", type=float, help="width multiplier, V1-V3 (default: 1.0)")
    train.add_argument("--dataset", default="digits",
                       help="digits (bundled, offline), tfds:NAME, or a folder of class sub-folders (default: digits)")
    train.add_argument("--image-size", type=int, default=224, help="input size in pixels (default: 224)")
    train.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    train.add_argument("--batch-size", type=int, default=64, help="one worker's batch; the global batch is this x workers (default: 64)")
    train.add_argument("--run", dest="run_dir", help="run directory (default: runs/MODEL-DATASET); re-run to resume")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the data split, initialization and augmentation (default: 0)")
    train.add_argument("--optimizer", default="sgd", help="sgd (momentum, Nesterov) or adamw (default: sgd)")
    train.add_argument("--learning-rate", type=float, help="peak rate (default: 0.1 x batch/256 for sgd, 1e-3 adamw)")
    train.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, help="default: 4e-5 for sgd, 0.05 for adamw")
    train.add_argument("--warmup-epochs", type=int, default=1,
                       help="epochs of linear learning-rate warm-up before the cosine decay (default: 1)")
    train.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing (default: 0.1)")
    train.add_argument("--ema", action="store_true", help="keep an exponential moving average of the weights (default: off)")
    train.add_argument("--ema-momentum", type=float, default=0.999, help="EMA momentum (default: 0.999)")
    train.add_argument("--bn-momentum", default="auto", help="BatchNorm momentum: auto (settles within short runs), keep, or a number (default: auto)")
    train.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"),
                       help="mixed-precision policy (default: float32 throughout)")
    train.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA (default: off; slower on CPU)")
    train.add_argument("--strategy", default="default", help="default, mirrored, multi_worker or tpu (default: default)")
    train.add_argument("--weights", help="start the backbone from 'imagenet' or a weights file (default: random)")
    train.add_argument("--init-from", help="start from another run directory's model.keras (default: none)")
    train.add_argument("--freeze-epochs", type=int, default=0, help="epochs with the backbone frozen (default: 0)")
    train.add_argument("--fine-tune-learning-rate", type=float, help="after the frozen epochs (default: rate / 10)")
    train.add_argument("--no-flip", action="store_true", help="no horizontal flips, for text, digits, ... (default: flips)")
    train.add_argument("--min-crop-area", type=float, default=0.25, help="smallest random crop, as a fraction of the image (default: 0.25)")
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="share of each class held out for validation, where the source has no split (default: 0.1)")
    train.add_argument("--test-fraction", type=float, default=0.1,
                       help="share of each class held out for testing, where the source has no split (default: 0.1)")
    train.add_argument("--data-dir", help="TFDS data directory (default: TFDS's)")
    train.add_argument("--download", action="store_true", help="let TFDS download the data set (default: no)")
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

    bn_momentum = {"auto": "auto", "keep": None}.get(args.bn_momentum)
    if bn_momentum is None and args.bn_momentum != "keep":
        try:
            bn_momentum = float(args.bn_momentum)
        except ValueError:
            raise ValueError(f"--bn-momentum: must be auto, keep or a number, got {args.bn_momentum!r}") from None
    slug = re.sub(r"[^A-Za-z0-9_.]+", "_", os.path.basename(args.dataset.rstrip("/")).replace("tfds:", ""))
    result = fit(
        args.model, run_dir=args.run_dir or os.path.join("runs", f"{args.model}-{slug}"),
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
        model_kwargs={"alpha": args.alpha} if args.alpha is not None else None, seed=args.seed,
        optimizer=args.optimizer, learning_rate=args.learning_rate, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
        ema=args.ema, ema_momentum=args.ema_momentum, bn_momentum=bn_momentum,
        mixed_precision=args.mixed_precision, jit_compile=args.jit_compile, strategy=args.strategy,
        weights=args.weights, init_from=args.init_from, freeze_epochs=args.freeze_epochs,
        fine_tune_learning_rate=args.fine_tune_learning_rate, flip=not args.no_flip,
        min_crop_area=args.min_crop_area, validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction, data_dir=args.data_dir, download=args.download,
    )
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
