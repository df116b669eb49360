"""ImageNet weights and weight files: where they come from, and loading them all-or-nothing."""
import os
import warnings

KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"

# The alphas (and for V1/V2 input sizes) that keras.applications published weights for.
IMAGENET_ALPHAS = {
    "v1": (0.25, 0.5, 0.75, 1.0),
    "v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
    "v3": (0.75, 1.0),
}
IMAGENET_SIZES = {"v1": (128, 160, 192, 224), "v2": (96, 128, 160, 192, 224), "v3": (224,)}

# keras.applications' MD5s of the MobileNetV3 files: (with top, without top).
# It publishes none for V1 and V2; those downloads are not hash-checked there either.
V3_HASHES = {
    "large_224_0.75_float": ("765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": ("59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": ("675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": ("cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": ("8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": ("99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".pkl", ".ckpt")


def _weight_size(family, size):
    """keras.applications' rule: the nearest published size, else 224 (conv weights fit any size)."""
    if size in IMAGENET_SIZES[family]:
        return size
    warnings.warn(
        f"no {family} ImageNet weights for input size {size}; loading the 224 weights "
        f"(published sizes: {IMAGENET_SIZES[family]})",
        stacklevel=3,
    )
    return 224


def keras_applications_file(family, *, alpha, include_top, size, model_type=None, minimalistic=False):
    """(file name, URL, MD5 or None) of the keras.applications ImageNet file for these arguments."""
    if family == "v1":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[alpha]
        rows = _weight_size("v1", size)
        name = f"mobilenet_{alpha_text}_{rows}_tf{'' if include_top else '_no_top'}.h5"
        return name, KERAS_APPLICATIONS + "mobilenet/" + name, None
    if family == "v2":
        rows = _weight_size("v2", size)
        name = (
            f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
            f"{'' if include_top else '_no_top'}.h5"
        )
        return name, KERAS_APPLICATIONS + "mobilenet_v2/" + name, None
    key = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    name = f"weights_mobilenet_v3_{key}{'' if include_top else '_no_top_v2'}.h5"
    return name, KERAS_APPLICATIONS + "mobilenet_v3/" + name, V3_HASHES[key][0 if include_top else 1]


def download(name, url, md5):
    """Fetch into Keras's cache (~/.keras/models), checking the hash when one is published."""
    import keras

    return keras.utils.get_file(name, url, cache_subdir="models", file_hash=md5)


def refuse_pickles(paths, *, instead):
    """ValueError for pickle checkpoints among `paths`: unpickling can run arbitrary code."""
    pickles = [path for path in paths if path.endswith(PICKLE_SUFFIXES)]
    if pickles:
        shown = pickles[0] if len(pickles) == 1 else pickles
        raise ValueError(
            f"weights={shown!r}: pickle checkpoints ({', '.join(PICKLE_SUFFIXES)}) are refused "
            f"because loading them can run arbitrary code; use {instead}"
        )


def load_weights_file(model, path):
    """Load a weights file into `model`; on any failure the model is left exactly as it was.

    Keras files (.keras, .weights.h5) and keras.applications' legacy .h5 files
    (matched layer by layer in order) are read by Keras itself. Pickle formats
    are refused: unpickling runs arbitrary code.
    """
    path = os.fspath(path)
    refuse_pickles([path], instead=".safetensors, .keras or .h5")
    if not path.endswith((".h5", ".keras")):
        raise ValueError(
            f"weights={path!r}: unknown weights format; allowed: .keras, .weights.h5, "
            "keras.applications .h5"
        )
    if not os.path.isfile(path):
        raise ValueError(f"weights={path!r}: no such file")
    before = model.get_weights()
    try:
        model.load_weights(path)
    except Exception as error:  # any failure: put every weight back, then explain
        model.set_weights(before)
        raise ValueError(
            f"weights={path!r} does not fit {model.name}: {error}. The model was left unchanged."
        ) from error
