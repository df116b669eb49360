"""Run the ops that XNNPACK has no int8 kernel for in float, inside the one partition.

LiteRT 2.3's XNNPACK delegate takes HARD_SWISH, SOFTMAX and GELU in float only.
In int8 they fall back to LiteRT's reference kernels and cut the graph into
partitions (a QAT MobileNetV3 splits into 20, and runs slower than float).
Post-training int8 avoids that with the quantization debugger's denylist, which
keeps them in float between a DEQUANTIZE and a QUANTIZE; quantization-aware
models don't go through that calibration path, so for them the same rewrite is
done here on the converted file: each int8 HARD_SWISH / SOFTMAX / GELU becomes

    int8 x -> DEQUANTIZE -> float op -> QUANTIZE -> int8 y   (x and y keep their scales)

which XNNPACK runs whole. The ranges of x and y are the ones QAT learned. Where
y only feeds the DEQUANTIZE of a float output (the classifier's softmax), the
float op writes that output directly, so probabilities keep full precision
instead of steps of 1/256. TF's
flatbuffer_utils reads and writes the file as objects; no library offers this
rewrite for QAT graphs (the denylist only exists in TF's calibration path).
"""
FLOAT_ONLY_OPS = ("HARD_SWISH", "SOFTMAX", "GELU")


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
