"""`keras-mobilenets profile`: parameters and MACs of a variant, per layer or in total."""
import json


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "profile", help="parameters and multiply-adds of a MobileNet variant"
    )
    parser.add_argument("model", help="variant name (v1, v2, v3_small, ..., v4_hybrid_large)")
    parser.add_argument("--image-size", type=int, help="input size (default: the variant's native size)")
    parser.add_argument("--alpha", type=float, help="width multiplier (V1, V2, V3)")
    parser.add_argument("--layers", action="store_true", help="print every layer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_profile)


def run_profile(args):
    import keras_mobilenets as kmn

    kwargs = {}
    if args.image_size:
        kwargs["input_shape"] = (args.image_size, args.image_size, 3)
    if args.alpha is not None:
        kwargs["alpha"] = args.alpha
    model = kmn.build(args.model, **kwargs)
    result = kmn.profile(model)
    if args.json:
        print(json.dumps({
            "model": args.model,
            "input_shape": list(model.inputs[0].shape[1:]),
            "params": result.total_params,
            "trainable_params": result.trainable_params,
            "macs": result.total_macs,
        }))
    elif args.layers:
        print(result.table())
    else:
        print(f"{args.model}: {result.total_params:,} parameters, {result.total_macs:,} MACs "
              f"at {tuple(model.inputs[0].shape[1:])}")
    return 0
