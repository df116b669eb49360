"""TFLite (LiteRT) stage: conversion, Android metadata, evaluation and benchmarking.

    kmn.tflite.convert(qat_model, "model.tflite", quantization="qat-int8")
    kmn.tflite.evaluate("model.tflite", test_split, keras_model=qat_model)
    kmn.tflite.benchmark("model.tflite", threads=1)

Names are imported on first use (see keras_mobilenets.lazy).
"""
from keras_mobilenets.lazy import exports

# public name -> "module" or "module:attribute" that defines it
__all__, __getattr__, __dir__ = exports(__name__, {
    "convert": "keras_mobilenets.tflite.converter",
    "evaluate": "keras_mobilenets.tflite.accuracy",
    "benchmark": "keras_mobilenets.tflite.latency",
    "convert_run": "keras_mobilenets.tflite.runs",
    "evaluate_run": "keras_mobilenets.tflite.runs",
    "read_metadata": "keras_mobilenets.tflite.metadata:read",
    "read_labels": "keras_mobilenets.tflite.metadata",
})
