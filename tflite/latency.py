"""Latency of a .tflite under LiteRT's CPU runtime (XNNPACK), and how whole its graph stays.

A graph that XNNPACK takes whole runs as one delegate partition; every op it
rejects runs in LiteRT's reference kernels and cuts the graph in two, with
a hand-over of tensors at each cut. So the report counts partitions and names
the ops left outside.

Per-op timings: ai_edge_litert's Python Interpreter exposes no profiler (only
the C++ benchmark_model tool has one), so the report gives per-op-type counts
inside and outside the delegate, not per-op times.
"""
import os
import statistics
import time
from collections import Counter

import numpy as np

from keras_mobilenets.tflite.metadata import read_model


def benchmark(path, *, threads=1, runs=100, warmup=10, seed=0):
    """Latency of a .tflite file under LiteRT's CPU runtime (XNNPACK), and how whole its graph stays.

    Args:
        path: the .tflite file.
        threads: CPU threads for LiteRT. Default 1.
        runs: timed invocations (on one random input). Default 100.
        warmup: untimed invocations first. Default 10.
        seed: seed of the random input. Default 0.

    Returns:
        A dict: "model", "size_bytes", "threads", "runs", "warmup",
        "median_ms", "p90_ms", "min_ms", "mean_ms", and the delegation report:
        "partitions" (XNNPACK partitions; 1 is a whole graph), "ops_total",
        "ops_in_delegate" and "ops_outside_delegate" (op type -> count).

    Raises:
        FileNotFoundError: no such file.
        ValueError: threads or runs below 1, warmup below 0, or a truncated file.
    """
    if threads < 1 or runs < 1 or warmup < 0:
        raise ValueError(f"threads and runs must be >= 1 and warmup >= 0, got {threads}, {runs}, {warmup}")
    read_model(path)  # a clear error for a missing or truncated file, before the runtime sees it
    interpreter = load_interpreter(path, threads=threads)
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], random_input(detail, seed))
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1000)
    delegation = delegation_report(interpreter)
    return {
        "model": os.fspath(path),
        "size_bytes": os.path.getsize(path),
        "threads": threads,
        "runs": runs,
        "warmup": warmup,
        "median_ms": statistics.median(times),
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": min(times),
        "mean_ms": statistics.fmean(times),
        **delegation,
    }


def load_interpreter(path, threads=1):
    """An allocated LiteRT interpreter with the default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def random_input(detail, seed=0):
    """A random image batch of the input's shape and type (pixels 0..255, or their int8 codes)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(0, 255, detail["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(dtype)


def delegation_report(interpreter):
    """Delegate partitions and the op types inside and outside them.

    After delegation the interpreter lists the model's original nodes followed
    by one DELEGATE node per partition, whose inputs and outputs are the
    partition's boundary tensors. The nodes a partition replaced are those
    reached walking back from its outputs to its inputs; the rest run outside.
    """
    ops = interpreter._get_ops_details()  # the only view of the delegated graph in Python
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {tensor: op["index"] for op in original for tensor in op["outputs"]}
    delegated = set()
    for partition in partitions:
        boundary = set(partition["inputs"])
        pending = list(partition["outputs"])
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in delegated:
                continue
            delegated.add(node)
            pending.extend(t for t in ops[node]["inputs"] if t >= 0)
    return {
        "partitions": len(partitions),
        "ops_total": len(original),
        "ops_outside_delegate": dict(Counter(op["op_name"] for op in original if op["index"] not in delegated)),
        "ops_in_delegate": dict(Counter(op["op_name"] for op in original if op["index"] in delegated)),
    }
