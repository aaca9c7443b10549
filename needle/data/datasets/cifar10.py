"""CIFAR-10 from the official python batches (``cifar-10-batches-py``).

The batches are pickles (protocol 2, written by Python 2 with numpy): a dict
{b"data": uint8 array (10000, 3072), b"labels": [int], ...}.  They are NOT
read with ``pickle.load``, which would run whatever a crafted file asks for.
``pickletools.genops`` only tokenises the stream; ``_parse_batch`` interprets
the handful of opcodes such a file uses with a stack of plain Python values,
and recognises exactly three globals (numpy's array reconstructor, numpy.dtype
restricted to numeric types, and the latin-1 ``_codecs.encode`` that Python 3
uses for bytes in protocol 2).  Nothing is ever imported or called by name;
any other opcode or global is refused with ValueError.
"""

import hashlib
import os
import pickletools
import tarfile
import urllib.error
import urllib.request

import numpy as np
from tqdm import tqdm

from ..dataset import ImageDataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class CIFAR10Dataset(ImageDataset):
    """The 50,000 training or 10,000 test images of CIFAR-10.

    ``root`` is the folder that holds ``cifar-10-batches-py/`` (or that folder
    itself).  With ``download=True`` a missing folder is fetched from the
    official site (md5-checked) and extracted under root.
    """

    def __init__(self, root, train=True, download=False, transforms=None):
        names = TRAIN_FILES if train else TEST_FILES
        folder = _find_folder(root, names)
        if folder is None:
            if not download:
                raise FileNotFoundError(f"CIFAR-10 batches not found under {root}. "
                                        + _where_to_put(root))
            download_and_extract(root)
            folder = os.path.join(root, FOLDER)
        batches = [read_batch(os.path.join(folder, name)) for name in names]
        images = np.concatenate([b[0] for b in batches])
        # Each row is 1024 red, then 1024 green, then 1024 blue values (row-major 32x32).
        images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        super().__init__(np.ascontiguousarray(images), np.concatenate([b[1] for b in batches]),
                         CLASSES, transforms)


def _find_folder(root, names):
    for folder in (os.path.join(root, FOLDER), root):
        if all(os.path.isfile(os.path.join(folder, n)) for n in names):
            return folder
    return None


def _where_to_put(root):
    return (f"Download {URL} (md5 {MD5}) and extract it so that "
            f"{os.path.join(root, FOLDER)} holds data_batch_1 ... data_batch_5 and test_batch, "
            f"or pass download=True on a machine with network. Without the batches, any folder "
            f"of images laid out as <root>/<class>/<image>.jpg|png works with "
            f"needle.data.ImageFolderDataset (for example the CIFAR-10 JPEG re-encoding).")


# ------------------------------------------------------------ download

def download_and_extract(root):
    """Fetch the official archive into root (unless a good copy is there) and extract it."""
    os.makedirs(root, exist_ok=True)
    archive = os.path.join(root, ARCHIVE)
    if not (os.path.isfile(archive) and _md5(archive) == MD5):
        _download(archive)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(FOLDER + "/")]
        # filter="data" refuses absolute paths, "..", links out of root and devices.
        tar.extractall(root, members=members, filter="data")


def _download(archive):
    tmp = archive + ".part"
    try:
        with urllib.request.urlopen(URL, timeout=30) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=ARCHIVE) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as err:
        _remove(tmp)
        raise RuntimeError(f"Could not download CIFAR-10 from {URL} ({err}). "
                           + _where_to_put(os.path.dirname(archive))) from err
    digest = _md5(tmp)
    if digest != MD5:
        _remove(tmp)
        raise ValueError(f"{URL} downloaded with md5 {digest}, expected {MD5}; "
                         f"the file was discarded (corrupted or incomplete download)")
    os.replace(tmp, archive)


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


# ------------------------------------------------------------ reading a batch

def read_batch(path):
    """(images uint8 (N, 3072), labels int64 (N,)) of one batch file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        batch = _parse_batch(data)
        images = batch["data"]
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError) as err:
        raise ValueError(f"{path} is not a CIFAR-10 python batch ({type(err).__name__}: {err})") \
            from err
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != 3072 or labels.shape != (len(images),):
        raise ValueError(f"{path}: expected uint8 data (N, 3072) and N labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ValueError(f"{path}: labels outside 0..{len(CLASSES) - 1}")
    return images, labels


class _Global:
    """A recognised global, and a value it is applied to (pending BUILD)."""

    def __init__(self, name, args=()):
        self.name = name
        self.args = args


_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
}
_PUSH_ARG = {"BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "SHORT_BINSTRING", "BINSTRING",
             "SHORT_BINUNICODE", "BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def _as_bytes(s):
    # Python 2 str arrives from pickletools decoded as latin-1; undo that.
    return s.encode("latin-1") if isinstance(s, str) else s


def _as_key(k):
    return k.decode("latin-1") if isinstance(k, bytes) else k


def _apply(func, args):
    """REDUCE: a recognised global called with args, without calling anything foreign."""
    if not isinstance(func, _Global):
        raise ValueError("REDUCE on something that is not a recognised global")
    if func.name == "encode" and len(args) == 2 and args[1] == "latin1":
        return args[0].encode("latin-1")
    if func.name == "dtype":
        dtype = np.dtype(_as_key(args[0]))
        if dtype.kind not in "biuf":
            raise ValueError(f"dtype {dtype} is not numeric")
        return dtype
    if func.name == "reconstruct" and getattr(args[0], "name", None) == "ndarray":
        return _Global("array")
    raise ValueError(f"unsupported call {func.name}{args!r:.80}")


def _build(obj, state):
    """BUILD: numpy's __setstate__ for dtypes and arrays, restated on plain data."""
    if isinstance(obj, np.dtype):
        byteorder = _as_key(state[1])
        return obj.newbyteorder(byteorder) if byteorder in ("<", ">") else obj
    if isinstance(obj, _Global) and obj.name == "array":
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, np.dtype):
            raise ValueError("array state without a dtype")
        arr = np.frombuffer(_as_bytes(raw), dtype=dtype)
        return arr.reshape(shape, order="F" if fortran else "C").copy()
    raise ValueError(f"BUILD on unsupported {type(obj).__name__}")


def _parse_batch(data):
    """The dict a CIFAR-10 batch pickle describes, keys as str."""
    stack, marks, memo = [], [], {}

    def pop_mark():
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name == "PROTO":
            continue
        if name in _PUSH_ARG:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in ("BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "TUPLE":
            stack.append(tuple(pop_mark()))
        elif name == "APPEND":
            item = stack.pop()
            stack[-1].append(item)
        elif name == "APPENDS":
            items = pop_mark()
            stack[-1].extend(items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            stack[-1][_as_key(key)] = value
        elif name == "SETITEMS":
            items = pop_mark()
            stack[-1].update((_as_key(k), v) for k, v in zip(items[::2], items[1::2]))
        elif name == "GLOBAL":
            key = tuple(arg.split(" ", 1))
            if key not in _GLOBALS:
                raise ValueError(f"refusing global {'.'.join(key)}")
            stack.append(_Global(_GLOBALS[key]))
        elif name == "REDUCE":
            args = stack.pop()
            stack.append(_apply(stack.pop(), args))
        elif name == "BUILD":
            state, old = stack.pop(), stack[-1]
            stack[-1] = _build(old, state)
            # Later BINGETs of this object must see the built value.
            memo.update((k, stack[-1]) for k, v in list(memo.items()) if v is old)
        elif name == "STOP":
            result = stack.pop()
            if not isinstance(result, dict):
                raise ValueError("the pickle does not hold a dict")
            return result
        else:
            raise ValueError(f"unsupported pickle opcode {name}")
    raise ValueError("no STOP opcode")
