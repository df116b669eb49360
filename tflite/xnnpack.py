"""Rewrites of converted int8 files so that LiteRT's XNNPACK delegate runs them as one partition.

An op that XNNPACK refuses falls back to LiteRT's reference kernels and cuts
the graph into partitions, each with its own hand-over: a QAT MobileNetV3
split into 20 ran slower than float. TF's converter offers no switch for
these, so each rewrite is done here on the converted file with TF's
flatbuffer_utils (which reads and writes it as objects):

- `keep_in_float`: HARD_SWISH, SOFTMAX and GELU have no int8 kernel in LiteRT
  2.3's XNNPACK. Post-training int8 keeps them in float with the quantization
  debugger's denylist; quantization-aware models don't go through that
  calibration path, so here each int8 HARD_SWISH / SOFTMAX / GELU becomes

      int8 x -> DEQUANTIZE -> float op -> QUANTIZE -> int8 y   (x and y keep their scales)

  which XNNPACK runs whole, with the ranges QAT learned. Where y only feeds
  the DEQUANTIZE of a float output (the classifier's softmax), the float op
  writes that output directly, so probabilities keep full precision instead
  of steps of 1/256.
- `symmetric_matmul_operands`: int8 BATCH_MATMUL needs its second operand's
  zero point at 0 (the V4 hybrids' keys and values, post-training).
- `constant_add_scales`: int8 ADD needs each input's scale within a factor of
  2**-10 of the output's (the hybrids' lone BatchNorm, post-training).
"""
FLOAT_ONLY_OPS = ("HARD_SWISH", "SOFTMAX", "GELU")
# Ops whose int8 output must carry its input's scale and zero point.
_SAME_SCALE_OPS = ("RESHAPE", "TRANSPOSE")
# Ops that requantize to whatever scale their output tensor has.
_RESCALING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "QUANTIZE")


def keep_in_float(model_bytes, op_names=FLOAT_ONLY_OPS):
    """The .tflite bytes with every int8 op named in `op_names` run in float between DEQUANTIZE/QUANTIZE."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    targets = {getattr(schema.BuiltinOperator, name) for name in op_names}
    changed = False
    for subgraph in model.subgraphs:
        operators = []
        for op in subgraph.operators:
            tensors = [subgraph.tensors[i] for i in (op.inputs[0], op.outputs[0])]
            if _builtin(model.operatorCodes[op.opcodeIndex]) not in targets or any(
                    tensor.type != schema.TensorType.INT8 for tensor in tensors):
                operators.append(op)
                continue
            int8_in, int8_out = op.inputs[0], op.outputs[0]
            float_in, float_out = (_float_copy(schema, model, subgraph, i) for i in (int8_in, int8_out))
            op.inputs[0], op.outputs[0] = float_in, float_out
            op.opcodeIndex = _opcode(schema, model, _builtin(model.operatorCodes[op.opcodeIndex]), version=1)
            operators += [
                _operator(schema, _opcode(schema, model, schema.BuiltinOperator.DEQUANTIZE, 2), int8_in, float_in),
                op,
                _operator(schema, _opcode(schema, model, schema.BuiltinOperator.QUANTIZE, 2), float_out, int8_out),
            ]
            changed = True
        subgraph.operators = _skip_requantization(schema, model, subgraph, operators)
    if not changed:
        return bytes(model_bytes)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _skip_requantization(schema, model, subgraph, operators):
    """Drops QUANTIZE -> DEQUANTIZE pairs on the way to an output: the float op writes it directly."""
    consumers = {}
    for op in operators:
        for tensor in op.inputs:
            consumers.setdefault(tensor, []).append(op)
    producer = {op.outputs[0]: op for op in operators if len(op.outputs) == 1}
    dropped = set()
    for op in operators:
        if _builtin(model.operatorCodes[op.opcodeIndex]) != schema.BuiltinOperator.DEQUANTIZE:
            continue
        quantize = producer.get(op.inputs[0])
        if (quantize is None or id(quantize) in dropped
                or _builtin(model.operatorCodes[quantize.opcodeIndex]) != schema.BuiltinOperator.QUANTIZE
                or len(consumers[op.inputs[0]]) != 1 or op.inputs[0] in subgraph.outputs):
            continue
        float_op = producer.get(quantize.inputs[0])
        if float_op is None or len(consumers[quantize.inputs[0]]) != 1:
            continue
        float_op.outputs[0] = op.outputs[0]
        dropped.update((id(quantize), id(op)))
    return [op for op in operators if id(op) not in dropped]


def _builtin(code):
    # Codes above 127 live in builtinCode only; older files only fill deprecatedBuiltinCode.
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _opcode(schema, model, builtin, version):
    for index, code in enumerate(model.operatorCodes):
        if _builtin(code) == builtin and code.version == version:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)  # 127: "placeholder for codes above"
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_copy(schema, model, subgraph, index):
    """A new float32 activation tensor with the shape of tensor `index`; returns its index."""
    source = subgraph.tensors[index]
    tensor = schema.TensorT()
    tensor.shape = list(source.shape)
    tensor.shapeSignature = None if source.shapeSignature is None else list(source.shapeSignature)
    tensor.type = schema.TensorType.FLOAT32
    tensor.buffer = 0  # buffer 0 is the empty one every file has: an activation, not a constant
    name = source.name.decode() if isinstance(source.name, bytes) else str(source.name)
    tensor.name = f"{name}/float".encode()
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _operator(schema, opcode_index, source, target):
    op = schema.OperatorT()
    op.opcodeIndex = opcode_index
    op.inputs = [source]
    op.outputs = [target]
    return op


def symmetric_matmul_operands(model_bytes):
    """The .tflite bytes with every int8 BATCH_MATMUL's second operand quantized symmetrically.

    XNNPACK runs an int8 BATCH_MATMUL only when its second operand (the
    attention's keys and values) has zero point 0; otherwise the op falls back
    to LiteRT's kernels and cuts the graph (a trained v4_hybrid_medium's
    post-training int8 file: 16 BATCH_MATMULs outside, 21 partitions). QAT
    learns such ranges (training/quantize_configs.py); post-training
    calibration does not, so the range [min, max] the converter chose is
    widened here to [-m, m], m = max(|min|, |max|), on the operand and on every
    tensor tied to it by reshapes, back to the op that computes it, which
    requantizes to the new scale. That costs at most one bit of the operand's
    resolution. Operands computed by other ops are left as they are.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    same_scale = {getattr(schema.BuiltinOperator, name) for name in _SAME_SCALE_OPS}
    rescaling = {getattr(schema.BuiltinOperator, name) for name in _RESCALING_OPS}
    changed = False
    for subgraph in model.subgraphs:
        producer = {out: op for op in subgraph.operators for out in op.outputs}
        consumers = {}
        for op in subgraph.operators:
            for tensor in op.inputs:
                consumers.setdefault(tensor, []).append(op)
        for op in subgraph.operators:
            if _builtin(model.operatorCodes[op.opcodeIndex]) != schema.BuiltinOperator.BATCH_MATMUL:
                continue
            tied = _tied_tensors(model, op.inputs[1], producer, consumers, same_scale)
            tensors = [subgraph.tensors[index] for index in tied]
            first = tensors[0].quantization
            if (tensors[0].type != schema.TensorType.INT8 or first is None or first.zeroPoint is None
                    or len(first.zeroPoint) != 1 or int(first.zeroPoint[0]) == 0):
                continue
            sources = [producer.get(index) for index in tied]
            if any(source is None or _builtin(model.operatorCodes[source.opcodeIndex]) not in same_scale | rescaling
                   for source in sources):
                continue
            scale, zero = float(first.scale[0]), int(first.zeroPoint[0])
            bound = max(abs(scale * (-128 - zero)), abs(scale * (127 - zero)))
            for tensor in tensors:
                tensor.quantization.scale = [bound / 127]
                tensor.quantization.zeroPoint = [0]
            changed = True
    if not changed:
        return bytes(model_bytes)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tied_tensors(model, start, producer, consumers, same_scale):
    """`start` and every tensor that a same-scale op (reshape) links to it, in either direction."""
    tied, pending = [], [start]
    while pending:
        tensor = pending.pop()
        if tensor in tied:
            continue
        tied.append(tensor)
        source = producer.get(tensor)
        if source is not None and _builtin(model.operatorCodes[source.opcodeIndex]) in same_scale:
            pending.append(source.inputs[0])
        for consumer in consumers.get(tensor, []):
            if _builtin(model.operatorCodes[consumer.opcodeIndex]) in same_scale and consumer.inputs[0] == tensor:
                pending.extend(consumer.outputs)
    return tied


# XNNPACK takes an int8 ADD only when each input's scale is within [2**-10, 2**8) of the output's.
_ADD_MIN_SCALE_RATIO = 2.0 ** -10


def constant_add_scales(model_bytes):
    """The .tflite bytes with each int8 ADD's constant operand at a scale XNNPACK accepts.

    Post-training int8 turns the V4 hybrids' lone BatchNorm (Mobile MQA's
    norm) into MUL + ADD(beta); beta's values are far below one step of the
    output (a trained v4_hybrid_medium: scale 9e-5 against 0.106), so the ADD
    falls outside XNNPACK (4 ADDs, 4 more partitions). beta is re-expressed
    at the smallest scale XNNPACK takes; its values were already a fraction of
    the output's step, so the result moves by less than one step.
    """
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    changed = False
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _builtin(model.operatorCodes[op.opcodeIndex]) != schema.BuiltinOperator.ADD:
                continue
            output = subgraph.tensors[op.outputs[0]]
            for index in op.inputs:
                tensor = subgraph.tensors[index]
                buffer = model.buffers[tensor.buffer].data if tensor.buffer else None
                if (tensor.type != schema.TensorType.INT8 or buffer is None or len(buffer) == 0
                        or output.quantization is None or tensor.quantization is None
                        or len(tensor.quantization.scale) != 1):
                    continue
                scale, smallest = float(tensor.quantization.scale[0]), _ADD_MIN_SCALE_RATIO * float(output.quantization.scale[0])
                if scale >= smallest:
                    continue
                zero = int(tensor.quantization.zeroPoint[0])
                values = (np.frombuffer(bytes(buffer), dtype=np.int8).astype(np.float64) - zero) * scale
                # a hair above the bound (float rounding), and wide enough for every value
                new_scale = max(smallest * 1.001, float(np.abs(values).max()) / 127)
                rescaled = np.clip(np.round(values / new_scale), -127, 127).astype(np.int8)
                copy = schema.BufferT()
                copy.data = list(rescaled.tobytes())
                model.buffers.append(copy)  # a buffer of its own: constants may share one
                tensor.buffer = len(model.buffers) - 1
                tensor.quantization.scale = [new_scale]
                tensor.quantization.zeroPoint = [0]
                changed = True
    if not changed:
        return bytes(model_bytes)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
