"""needle.save / needle.load: state dicts in a file that cannot run code when read.

Format (version 1): a zip archive in numpy's .npz layout.  Every array of the
saved object is one ``aN.npy`` member written with ``allow_pickle=False``; the
member ``__needle__.npy`` is a uint8 array holding UTF-8 JSON:

    {"format": "needle", "version": 1,
     "structure": <the object, arrays replaced by {"array": "aN"}>,
     "arrays": {"aN": {"dtype": ..., "shape": [...]}},
     "sha256": <digest of the JSON above (without this key) and every array's bytes>}

Loading reads with ``allow_pickle=False`` (numpy refuses object arrays) and
checks the digest, so a pickle, a truncated or foreign file, or one whose
bytes were changed raises ValueError before anything is returned.  Writes go
to a temporary file in the target directory, are fsynced and then renamed
over the target, so a crash never leaves a half-written file under the name.
"""

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .autograd import Tensor
from .backend_ndarray import NDArray

FORMAT = "needle"
VERSION = 1
_META = "__needle__"
_ZIP_MAGIC = b"PK\x03\x04"


# ------------------------------------------------------------ object <-> structure

def _encode(obj, arrays):
    """The JSON-able structure of obj; arrays found are appended to `arrays`."""
    if isinstance(obj, (Tensor, NDArray)):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("needle.save cannot store arrays of Python objects")
        name = f"a{len(arrays)}"
        arrays.append((name, np.ascontiguousarray(obj)))
        return {"array": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        for key in obj:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"needle.save: dict keys must be str or int, got {key!r}")
        return {"dict": [[key, _encode(value, arrays)] for key, value in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {type(obj).__name__: [_encode(item, arrays) for item in obj]}
    raise TypeError(f"needle.save cannot store {type(obj).__name__}; it stores nested dicts, "
                    f"lists and tuples of arrays, Tensors, numbers, strings and None")


def _decode(node, arrays):
    kind, = node  # every node is a one-key dict; the key says what it holds
    if kind == "array":
        return arrays[node["array"]]
    if kind == "value":
        return node["value"]
    if kind == "dict":
        return {key: _decode(value, arrays) for key, value in node["dict"]}
    if kind == "list":
        return [_decode(item, arrays) for item in node["list"]]
    if kind == "tuple":
        return tuple(_decode(item, arrays) for item in node["tuple"])
    raise ValueError(f"unknown node kind {kind!r}")


def _digest(header, named_arrays):
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for name, arr in named_arrays:
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------ save

def _write_member(zf, name, arr):
    with zf.open(name + ".npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, arr, allow_pickle=False)


def save(obj, path):
    """Write obj (nested dicts / lists / tuples of arrays, Tensors, numbers, strings) to path."""
    arrays = []
    header = {
        "format": FORMAT,
        "version": VERSION,
        "structure": _encode(obj, arrays),
        "arrays": {name: {"dtype": arr.dtype.str, "shape": list(arr.shape)}
                   for name, arr in arrays},
    }
    header["sha256"] = _digest(header, arrays)
    meta = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                _write_member(zf, _META, meta)
                for name, arr in arrays:
                    _write_member(zf, name, arr)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------ load

def load(path):
    """Read a file written by needle.save; arrays come back as numpy arrays."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        raise ValueError(f"{path} is not a needle file (no zip header: it may be a pickle, "
                         f"a torch checkpoint or another foreign format); nothing was loaded")
    try:
        return _read(path)
    except ValueError as err:
        raise ValueError(f"{path} is not a valid needle file: {err}") from err
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, TypeError, AttributeError,
            UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is truncated or corrupted ({type(err).__name__}: {err})") from err


def _read(path):
    with np.load(path, allow_pickle=False) as npz:
        if _META not in npz.files:
            raise ValueError("it has no needle metadata (a plain .npz?)")
        header = json.loads(npz[_META].tobytes().decode())
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"unsupported format {header.get('format')!r} "
                             f"version {header.get('version')!r}")
        arrays = {name: npz[name] for name in header["arrays"]}
    for name, spec in header["arrays"].items():
        arr = arrays[name]
        if arr.dtype.str != spec["dtype"] or list(arr.shape) != spec["shape"]:
            raise ValueError(f"array {name} is {arr.dtype.str} {list(arr.shape)}, its "
                             f"metadata says {spec['dtype']} {spec['shape']} (tampered?)")
    expected = header.pop("sha256", None)
    if expected != _digest(header, arrays.items()):
        raise ValueError("checksum mismatch: the file was modified or damaged")
    return _decode(header["structure"], arrays)
