"""Property-based: any combination of arguments gives a working model or a ValueError."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import keras_mobilenets as kmn

LIGHT_VARIANTS = ("v1", "v2", "v3_small", "v3_large", "v4_conv_small", "v4_hybrid_medium")

arguments = st.fixed_dictionaries(
    {
        "variant": st.sampled_from(LIGHT_VARIANTS),
        "size": st.one_of(st.none(), st.integers(16, 72)),
        "channels": st.sampled_from([1, 2, 3, 4]),
        "alpha": st.one_of(st.none(), st.sampled_from([-1.0, 0.05, 0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 3.0])),
        "classes": st.integers(-1, 12),
        "include_top": st.booleans(),
        "pooling": st.sampled_from([None, "avg", "max", "min"]),
        "minimalistic": st.booleans(),
    }
)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments)
def test_model_or_value_error(args):
    kwargs = {
        "input_shape": (args["size"], args["size"], args["channels"]),
        "classes": args["classes"],
        "include_top": args["include_top"],
        "pooling": args["pooling"],
    }
    if args["alpha"] is not None:
        kwargs["alpha"] = args["alpha"]
    if args["variant"].startswith("v3"):
        kwargs["minimalistic"] = args["minimalistic"]
    try:
        model = kmn.build(args["variant"], **kwargs)
    except ValueError as error:
        assert str(error).split(":")[0] in kwargs, error  # names the argument at fault
        return
    size = args["size"] or 48
    images = np.zeros((1, size, size, args["channels"]), "float32")
    output = model.predict(images, verbose=0)
    if args["include_top"]:
        assert output.shape == (1, args["classes"])
    elif args["pooling"] is not None:
        assert output.ndim == 2
    else:
        assert output.ndim == 4
