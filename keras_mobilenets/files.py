"""Writing files so that a kill never leaves half of one: write beside it, then rename."""
import os
import pathlib


def _temporary_beside(path):
    """A hidden name in the same folder (rename is atomic within one file system), same suffix
    (Keras and matplotlib choose the format from it)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def save_atomically(path, save):
    """Call `save(temporary_path)`, flush it to disk, then rename it to `path`."""
    path = pathlib.Path(path)
    temporary = _temporary_beside(path)
    try:
        save(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_atomically(path, data):
    """Write bytes or text to `path` atomically."""
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"

    def write(temporary):
        with open(temporary, mode) as handle:
            handle.write(data)

    return save_atomically(path, write)
