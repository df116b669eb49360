"""The `keras-mobilenets` command: one sub-command per stage.

Each stage module adds its own sub-commands with `add_commands(subparsers)`;
every sub-command sets `run=function(args) -> exit code`. Heavy imports
(TensorFlow) happen inside those functions so that `--help` stays fast.
"""
import argparse
import sys

from keras_mobilenets import model_cli
from keras_mobilenets.app import pipeline
from keras_mobilenets.training import cli as training_cli
from keras_mobilenets.training import qat_cli
from keras_mobilenets.tflite import cli as tflite_cli

STAGE_COMMANDS = (model_cli, training_cli, qat_cli, tflite_cli, pipeline)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-mobilenets",
        description="MobileNet V1-V4 for Keras: train, quantize, convert to TFLite for Android.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in STAGE_COMMANDS:
        module.add_commands(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-mobilenets {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
