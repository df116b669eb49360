"""`keras-mobilenets qat`: quantization-aware fine-tuning of a trained run, into the same run."""
from keras_mobilenets.training.qat import BATCH_NORM_MODES, LEARNING_RATE


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "qat", help="quantization-aware fine-tuning of a trained run (for int8 TFLite)"
    )
    parser.add_argument("--run", dest="run_dir", required=True, help="run directory trained by `keras-mobilenets train`")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="one worker's batch (default 32)")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE,
                        help=f"Adam learning rate (default {LEARNING_RATE:g}: QAT only adjusts a trained model)")
    parser.add_argument("--batch-norm", choices=BATCH_NORM_MODES, default="frozen",
                        help="BatchNorm while fine-tuning: frozen = the float model's statistics, "
                             "as the int8 graph folds them (default); train = batch statistics")
    parser.add_argument("--strategy", choices=("default", "multi_worker"), default="default",
                        help="multi_worker: fine-tune on the TF_CONFIG cluster, as `train` does (default: default)")
    parser.set_defaults(run=run_qat)


def run_qat(args):
    if args.strategy == "multi_worker":  # before anything runs a TensorFlow op
        from keras_mobilenets.training.distributed import multi_worker_strategy
        multi_worker_strategy()
    from keras_mobilenets.training.qat import quantization_aware_run
    from keras_mobilenets.training.runs import QAT_MODEL

    quantization_aware_run(args.run_dir, epochs=args.epochs, batch_size=args.batch_size,
                           learning_rate=args.learning_rate, batch_norm=args.batch_norm, strategy=args.strategy)
    print(f"QAT model: {args.run_dir}/{QAT_MODEL}; convert it with "
          f"`keras-mobilenets convert --run {args.run_dir} --quantization qat-int8`")
    return 0
