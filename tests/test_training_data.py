"""Data sources and the input pipeline: digits, TFDS (mocked by TFDS itself) and an image folder."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_mobilenets.training import data
from keras_mobilenets.training.split import split_indices


def labels(dataset):
    return np.array([int(label) for _, label in dataset.as_numpy_iterator()])


def test_digits_splits_are_stratified_deterministic_and_disjoint():
    splits = data.load("digits", image_size=32, seed=3)
    again = data.load("digits", image_size=32, seed=3)
    other = data.load("digits", image_size=32, seed=4)
    assert splits.class_names == [str(d) for d in range(10)]
    counts = [data.count(s) for s in (splits.train, splits.validation, splits.test)]
    assert sum(counts) == 1797 and counts[1] == counts[2] == pytest.approx(180, abs=5)
    np.testing.assert_array_equal(labels(splits.test), labels(again.test))
    assert not np.array_equal(labels(splits.test), labels(other.test))
    assert np.bincount(labels(splits.test)).min() >= 15  # every class in the test split
    image, label = next(iter(splits.test))
    assert image.shape == (32, 32, 3) and image.dtype == tf.float32 and label.dtype == tf.int32
    assert 0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 255
    assert float(tf.reduce_max(image)) > 200  # ink reaches white: 0..255, not 0..16 or 0..1


def test_split_indices_partition_every_example_once():
    labels_ = np.repeat(np.arange(3), [10, 20, 30])
    parts = split_indices(labels_, 0, {"validation": 0.2, "test": 0.1})
    joined = np.concatenate([parts["train"], parts["validation"], parts["test"]])
    np.testing.assert_array_equal(np.sort(joined), np.arange(60))
    assert np.bincount(labels_[parts["validation"]]).tolist() == [2, 4, 6]


def test_pipeline_augments_training_only_and_batches():
    splits = data.load("digits", image_size=32, seed=0)
    evaluation = [x for x, _ in data.pipeline(splits.test, 50, training=False).take(1)][0]
    evaluation_again = [x for x, _ in data.pipeline(splits.test, 50, training=False).take(1)][0]
    np.testing.assert_array_equal(evaluation, evaluation_again)
    assert evaluation.shape == (50, 32, 32, 3)
    train = data.pipeline(splits.train, 64, training=True, min_crop_area=0.3)
    first, second = [x for x, _ in train.take(1)][0], [x for x, _ in train.take(1)][0]
    assert first.shape == (64, 32, 32, 3) and not np.array_equal(first, second)
    with pytest.raises(ValueError, match="batch_size"):
        data.pipeline(splits.train, 0, training=True)
    with pytest.raises(ValueError, match="min_crop_area"):
        data.pipeline(splits.train, 8, training=True, min_crop_area=0)
    with pytest.raises(ValueError, match="one_hot_classes: must be a positive integer or None, got 0"):
        data.pipeline(splits.train, 8, training=True, one_hot_classes=0)


def test_pipeline_one_hot_labels_match_the_class_indices():
    splits = data.load("digits", image_size=32, seed=0)
    (_, indices), = data.pipeline(splits.test, 50, training=False).take(1)
    (_, one_hot), = data.pipeline(splits.test, 50, training=False, one_hot_classes=10).take(1)
    assert one_hot.shape == (50, 10)
    np.testing.assert_array_equal(np.argmax(one_hot, axis=1), indices)
    np.testing.assert_array_equal(np.sum(one_hot, axis=1), np.ones(50))


def test_tfds_source_through_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        splits = data.load("tfds:tf_flowers", image_size=40, seed=0)
        image, label = next(iter(splits.train))
        batch, _ = next(iter(data.pipeline(splits.validation, 4, training=False)))
    assert splits.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert image.shape == (40, 40, 3) and image.dtype == tf.float32 and label.dtype == tf.int32
    assert batch.shape == (4, 40, 40, 3)


def test_tfds_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="TFDS has no data set named 'no_such_set'"):
        data.load("tfds:no_such_set", image_size=32)
    with pytest.raises(FileNotFoundError, match="not prepared in .*--download"):
        data.load("tfds:mnist", image_size=32, data_dir=str(tmp_path))


def write_image(path, color, size=(20, 14)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_image_folder_skips_corrupt_files_and_keeps_classes(tmp_path):
    colors = {"blue": (0, 0, 255), "red": (255, 0, 0)}
    for name, color in colors.items():
        for i in range(10):
            write_image(tmp_path / name / f"{i}.{'png' if i % 2 else 'jpg'}", color)
    (tmp_path / "red" / "broken.jpg").write_bytes(b"not an image at all")
    (tmp_path / "red" / "notes.txt").write_text("not an image: left out and reported, not silently dropped")
    splits = data.load(str(tmp_path), image_size=32, seed=0, validation_fraction=0.2, test_fraction=0.2)
    assert splits.class_names == ["blue", "red"]
    assert [p.rsplit("/", 1)[-1] for p in splits.skipped] == ["broken.jpg", "notes.txt"]
    assert [data.count(s) for s in (splits.train, splits.validation, splits.test)] == [12, 4, 4]
    for image, label in splits.test.as_numpy_iterator():  # the label names the color it carries
        assert image.shape == (32, 32, 3)
        channel = 2 if splits.class_names[label] == "blue" else 0
        assert image[..., channel].mean() > 200


def test_image_folder_with_split_folders(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for name in ("cat", "dog"):
            for i in range(count):
                write_image(tmp_path / split / name / f"{i}.png", (i * 20, 50, 90))
    splits = data.load(str(tmp_path), image_size=32)
    assert [data.count(s) for s in (splits.train, splits.validation, splits.test)] == [12, 4, 6]


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not 'digits', 'tfds:NAME' or an existing folder"):
        data.load("no/such/folder", image_size=32)
    with pytest.raises(ValueError, match="is empty"):
        data.load(str(tmp_path), image_size=32)
    write_image(tmp_path / "loose.jpg", (1, 2, 3))
    with pytest.raises(ValueError, match="one sub-folder per class"):
        data.load(str(tmp_path), image_size=32)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match=r"\['empty_class'\] .* hold no images"):
        data.load(str(tmp_path), image_size=32)
    (tmp_path / "empty_class" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match="train split .* is empty"):
        data.load(str(tmp_path), image_size=32)
    with pytest.raises(ValueError, match="image_size"):
        data.load("digits", image_size=0)
    with pytest.raises(ValueError, match="validation_fraction \\+ test_fraction"):
        data.load("digits", image_size=32, validation_fraction=0.5, test_fraction=0.5)
