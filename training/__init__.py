"""Training stage: data sources, the fit loop and quantization-aware training.

    result = kmn.training.fit("v3_small", train, validation, epochs=5)
    qat_model = kmn.training.quantization_aware(result.model, train, validation, epochs=3)

Names are imported on first use (see keras_mobilenets.lazy).
"""
from keras_mobilenets.lazy import exports

# public name -> the module that defines it (None: a submodule)
__all__, __getattr__, __dir__ = exports(__name__, {
    "fit": "keras_mobilenets.training.loop",
    "Result": "keras_mobilenets.training.loop",
    "TrainConfig": "keras_mobilenets.training.config",
    "settle_batch_norm": "keras_mobilenets.training.batch_norm",
    "Run": "keras_mobilenets.training.runs",
    "quantization_aware": "keras_mobilenets.training.qat",
    "quantization_aware_run": "keras_mobilenets.training.qat",
    "load_qat_model": "keras_mobilenets.training.qat",
    "evaluate": "keras_mobilenets.training.accuracy",
    "data": None,
})
