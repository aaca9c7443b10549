"""Images laid out as root/<class>/<image>.{jpg,jpeg,png}, decoded once and cached.

Decoding tens of thousands of small JPEGs with Pillow takes long enough to
matter on every run, so the decoded uint8 array is saved as one .npy file.
The cache key hashes the list of files with their sizes and modification
times, so adding, removing or touching an image makes a new cache entry
instead of serving stale pixels.
"""

import hashlib
import os
import tempfile
import warnings

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..dataset import ImageDataset

EXTENSIONS = (".jpg", ".jpeg", ".png")


class ImageFolderDataset(ImageDataset):
    """Every image under root/<class>/, labelled by the class folder's sorted position.

    ``limit_per_class`` keeps the first n files (sorted by name) of each class.
    ``cache_dir`` defaults to $NEEDLE_CACHE or ``~/.cache/needle``; the file
    name carries a hash of the file list, so folders never collide; ``cache=False`` decodes
    every time and writes nothing.  All images must have the same size.
    """

    def __init__(self, root, transforms=None, cache=True, cache_dir=None, limit_per_class=None):
        root = os.path.abspath(root)
        classes = sorted(d.name for d in os.scandir(root)
                         if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise FileNotFoundError(f"no class folders under {root} "
                                    f"(expected root/<class>/<image>)")
        files, labels = [], []
        for label, name in enumerate(classes):
            found = sorted(e.name for e in os.scandir(os.path.join(root, name))
                           if e.is_file() and e.name.lower().endswith(EXTENSIONS))
            found = found[:limit_per_class] if limit_per_class is not None else found
            files += [os.path.join(root, name, f) for f in found]
            labels += [label] * len(found)
        if not files:
            raise FileNotFoundError(f"no {'/'.join(EXTENSIONS)} images under {root}/<class>/")
        images = _cached_decode(root, files, cache_dir) if cache else _decode(files)
        super().__init__(images, np.asarray(labels, dtype=np.int64), classes, transforms)


def _decode(files):
    first = _read_rgb(files[0])
    images = np.empty((len(files),) + first.shape, dtype=np.uint8)
    images[0] = first
    for i, path in enumerate(tqdm(files[1:], desc="decoding images", unit="img",
                                  initial=1, total=len(files)), start=1):
        img = _read_rgb(path)
        if img.shape != first.shape:
            raise ValueError(f"{path} is {img.shape[1]}x{img.shape[0]}, expected "
                             f"{first.shape[1]}x{first.shape[0]} like {files[0]}")
        images[i] = img
    return images


def _read_rgb(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _cache_key(root, files):
    h = hashlib.sha256()
    for path in files:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def default_cache_dir():
    """$NEEDLE_CACHE, else ~/.cache/needle: never beside the images, which may be read-only or shared."""
    return os.environ.get("NEEDLE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "needle")


def _cached_decode(root, files, cache_dir):
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, f"{os.path.basename(root)}-{_cache_key(root, files)}.npy")
    try:
        images = np.load(path, allow_pickle=False)
        if images.dtype == np.uint8 and images.ndim == 4 and len(images) == len(files):
            return images
    except (OSError, ValueError, EOFError):
        pass  # no cache yet, or a damaged one: decode again and overwrite it
    images = _decode(files)
    try:
        _write_atomically(path, images)
    except OSError as err:
        warnings.warn(f"could not cache decoded images at {path}: {err}")
    return images


def _write_atomically(path, images):
    """Write then rename, so a concurrent or interrupted run never reads half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, images, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
