"""Android metadata: written into the .tflite, read back, and the file still runs; bad files are named."""
import zipfile

import keras
import numpy as np
import pytest

from keras_mobilenets.tflite import metadata
from keras_mobilenets.tflite.latency import load_interpreter
from keras_mobilenets.tflite.converter import convert

LABELS = ["daisy", "rose", "tulip"]
FIELDS = {"name": "tiny", "description": "a tiny classifier", "version": "2", "labels": LABELS}


@pytest.fixture(scope="module")
def plain_tflite(tmp_path_factory):
    """A small float32 .tflite without metadata (a plain Keras model converts in seconds)."""
    inputs = keras.Input((32, 24, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    return convert(keras.Model(inputs, outputs), tmp_path_factory.mktemp("plain") / "plain.tflite")


@pytest.fixture
def tflite(plain_tflite, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(open(plain_tflite, "rb").read())
    return path


def test_metadata_reads_back(tflite):
    metadata.write(tflite, **FIELDS)
    meta = metadata.read(tflite)
    assert (meta["name"], meta["description"], meta["version"]) == ("tiny", "a tiny classifier", "2")
    assert meta["min_parser_version"] == "1.0.0"
    image, = meta["inputs"]
    assert image["content"] == "image" and image["color_space"] == "RGB"
    assert image["default_size"] == [32, 24]  # height, width from the model's input
    assert image["normalization"] == {"mean": [0.0], "std": [1.0]}
    assert image["stats"] == {"max": [255.0], "min": [0.0]}
    assert image["tensor_type"] == "FLOAT32"
    probabilities, = meta["outputs"]
    assert probabilities["associated_files"][0]["name"] == "labels.txt"
    assert probabilities["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert metadata.read_labels(tflite) == LABELS


def test_labels_are_a_stored_zip_after_the_model(tflite):
    metadata.write(tflite, **FIELDS)
    with zipfile.ZipFile(tflite) as archive:
        info, = archive.infolist()
    assert info.filename == "labels.txt" and info.compress_type == zipfile.ZIP_STORED


def test_model_with_metadata_still_runs_the_same(plain_tflite, tflite):
    metadata.write(tflite, **FIELDS)
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 24, 3)).astype("float32")
    outputs = []
    for path in (plain_tflite, tflite):
        interpreter = load_interpreter(path)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(*outputs)


def test_writing_twice_replaces_the_metadata(tflite):
    metadata.write(tflite, **FIELDS)
    metadata.write(tflite, **{**FIELDS, "version": "3", "labels": ["a", "b", "c"]})
    assert metadata.read(tflite)["version"] == "3"
    assert metadata.read_labels(tflite) == ["a", "b", "c"]
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(tflite.read_bytes(), 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert names.count("TFLITE_METADATA") == 1


def test_no_metadata_reads_as_none(plain_tflite):
    assert metadata.read(plain_tflite) is None
    with pytest.raises(ValueError, match="no packed labels.txt"):
        metadata.read_labels(plain_tflite)


def test_label_count_must_match_the_output(tflite):
    with pytest.raises(ValueError, match="2 labels given for a model with 3 output classes"):
        metadata.write(tflite, **{**FIELDS, "labels": ["a", "b"]})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such .tflite file"):
        metadata.read(tmp_path / "absent.tflite")


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_truncated_file(tflite, keep):
    data = tflite.read_bytes()
    tflite.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated or corrupt|not a TFLite model"):
        metadata.read(tflite)


def test_not_a_tflite_file(tmp_path):
    path = tmp_path / "labels.tflite"
    path.write_text("daisy\nrose\n")
    with pytest.raises(ValueError, match="not a TFLite model"):
        metadata.read_model(path)
