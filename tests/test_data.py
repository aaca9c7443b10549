"""needle.data: DataLoader, transforms, CIFAR10Dataset (fake batches written here, the
download path through file:// URLs) and ImageFolderDataset (the shared CIFAR-10 JPEGs)."""

import hashlib
import os
import pickle
import struct
import tarfile
import warnings

import numpy as np
import pytest
from PIL import Image

import needle as ndl
from needle.data import (CIFAR10Dataset, DataLoader, Dataset, ImageFolderDataset,
                         RandomCrop, RandomFlipHorizontal)
from needle.data.datasets import cifar10, image_folder

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                      "data", "cifar10-jpeg")
REF = ndl.cpu_numpy()
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED), reason=f"{SHARED} is not present")


class ArrayDataset(Dataset):
    def __init__(self, n):
        super().__init__()
        self.x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i


# ------------------------------------------------------------ DataLoader


def test_batches_and_drop_last(device):
    data = ArrayDataset(7)
    batches = list(DataLoader(data, batch_size=3, device=device))
    assert len(DataLoader(data, batch_size=3)) == 3 and [len(b[1]) for b in batches] == [3, 3, 1]
    x, y = batches[0]
    assert isinstance(x, ndl.Tensor) and x.device == device and x.shape == (3, 2)
    np.testing.assert_array_equal(y.numpy(), [0, 1, 2])
    assert y.numpy().dtype == np.float32
    dropped = list(DataLoader(data, batch_size=3, drop_last=True, device=device))
    assert len(dropped) == len(DataLoader(data, batch_size=3, drop_last=True)) == 2


def order(loader):
    """The sample indices a loader (on the numpy device) yields in one epoch."""
    return np.concatenate([y.numpy() for _, y in loader]).astype(int).tolist()


def test_shuffle_is_seeded_and_new_every_epoch():
    data = ArrayDataset(20)
    a, b = (DataLoader(data, 4, shuffle=True, seed=5, device=REF) for _ in range(2))
    epochs_a = [order(a) for _ in range(3)]
    assert epochs_a == [order(b) for _ in range(3)]
    assert all(sorted(e) == list(range(20)) for e in epochs_a)
    assert epochs_a[0] != epochs_a[1] != epochs_a[2]
    assert order(DataLoader(data, 4, shuffle=True, seed=6, device=REF)) != epochs_a[0]
    assert order(DataLoader(data, 4, device=REF)) == list(range(20))


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-2, ValueError), (1.5, TypeError),
                                       (True, TypeError), ("4", TypeError)])
def test_bad_batch_size(bad, error):
    with pytest.raises(error, match="batch_size must be a positive int"):
        DataLoader(ArrayDataset(3), batch_size=bad)


# ------------------------------------------------------------ transforms


def test_flip():
    img = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(RandomFlipHorizontal(p=1.0)(img), img[:, :, ::-1])
    assert RandomFlipHorizontal(p=0.0)(img) is img


def test_crop_is_a_shift_with_zero_fill():
    img = np.random.default_rng(0).random((3, 6, 7)).astype(np.float32)
    np.testing.assert_array_equal(RandomCrop(padding=0)(img), img)
    gen = np.random.default_rng(1)
    dy, dx = (np.random.default_rng(1).random(2) * 5).astype(int) - 2  # the crop's own draw
    out = RandomCrop(padding=2, generator=gen)(img)
    want = np.zeros_like(img)
    src = img[:, max(dy, 0):6 + min(dy, 0), max(dx, 0):7 + min(dx, 0)]
    want[:, max(-dy, 0):max(-dy, 0) + src.shape[1], max(-dx, 0):max(-dx, 0) + src.shape[2]] = src
    assert out.shape == img.shape
    np.testing.assert_array_equal(out, want)


# ------------------------------------------------------------ CIFAR-10 batches


def write_fake_cifar(folder, rng, n=6):
    """cifar-10-batches-py as the official files are: protocol-2 pickles, bytes keys."""
    os.makedirs(folder)
    batches = {}
    for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n}, f, protocol=2)
        batches[name] = (data, labels)
    return batches


def python2_batch(data, labels):
    """The bytes Python 2's cPickle.dump(protocol=2) writes for a CIFAR-10 batch dict."""
    def text(b):
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    def integer(n):
        return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)

    dtype = (b"cnumpy\ndtype\nq\x01" + text(b"u1") + integer(0) + integer(1) + b"\x87R("
             + integer(3) + text(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + integer(0) + b"\x85"
             + text(b"b") + b"\x87R(" + integer(1) + integer(data.shape[0]) + integer(data.shape[1])
             + b"\x86" + dtype + b"\x89" + text(data.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(v) for v in labels) + b"e"
    return b"\x80\x02}q\x00(" + text(b"data") + array + text(b"labels") + label_list + b"u."


def test_cifar10_reads_official_format(tmp_path, rng):
    batches = write_fake_cifar(tmp_path / cifar10.FOLDER, rng)
    train = CIFAR10Dataset(tmp_path)
    assert len(train) == 30 and train.images.shape == (30, 32, 32, 3)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    data, labels = batches["data_batch_2"]
    assert train.labels[6:12].tolist() == labels
    # A row holds the red plane, then green, then blue, each 32x32 row-major.
    np.testing.assert_array_equal(train.images[6, :, :, 1], data[0, 1024:2048].reshape(32, 32))
    img, label = train[6]
    assert img.shape == (3, 32, 32) and img.dtype == np.float32 and label == labels[0]
    np.testing.assert_allclose(img * 255, data[0].reshape(3, 32, 32), atol=1e-4)
    test = CIFAR10Dataset(tmp_path / cifar10.FOLDER, train=False)  # the folder itself works too
    assert len(test) == 6 and test.classes[9] == "truck"


def test_cifar10_reads_python2_pickles(tmp_path, rng):
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    raw = python2_batch(data, [1, 7, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core is a deprecated alias
        reference = pickle.loads(raw, encoding="bytes")  # our bytes are a valid pickle
    np.testing.assert_array_equal(reference[b"data"], data)
    (tmp_path / "test_batch").write_bytes(raw)
    images, labels = cifar10.read_batch(tmp_path / "test_batch")
    np.testing.assert_array_equal(images, data)
    assert labels.tolist() == [1, 7, 0]


def test_cifar10_refuses_code_in_a_batch(tmp_path, rng):
    folder = tmp_path / cifar10.FOLDER
    write_fake_cifar(folder, rng)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch.*refusing global"):
        CIFAR10Dataset(tmp_path)
    assert not marker.exists()
    (folder / "test_batch").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        CIFAR10Dataset(tmp_path, train=False)


def test_cifar10_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CIFAR10Dataset(tmp_path)
    message = str(err.value)
    assert str(tmp_path / cifar10.FOLDER) in message and "data_batch_1" in message
    assert cifar10.URL in message and "ImageFolderDataset" in message


def test_cifar10_download_without_network_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(RuntimeError, match="Could not download.*data_batch_1.*ImageFolderDataset"):
        CIFAR10Dataset(tmp_path / "root", download=True)
    assert not any((tmp_path / "root").iterdir())  # no partial archive left behind


def fake_archive(tmp_path, rng):
    write_fake_cifar(tmp_path / "src" / cifar10.FOLDER, rng)
    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / cifar10.FOLDER, arcname=cifar10.FOLDER)
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_cifar10_download_checks_md5_and_extracts(tmp_path, rng, monkeypatch):
    archive, md5 = fake_archive(tmp_path, rng)
    monkeypatch.setattr(cifar10, "URL", archive.as_uri())
    monkeypatch.setattr(cifar10, "MD5", "0" * 32)
    with pytest.raises(ValueError, match="md5"):
        CIFAR10Dataset(tmp_path / "bad", download=True)
    assert not any((tmp_path / "bad").iterdir())
    monkeypatch.setattr(cifar10, "MD5", md5)
    data = CIFAR10Dataset(tmp_path / "good", train=False, download=True)
    assert len(data) == 6 and (tmp_path / "good" / cifar10.ARCHIVE).is_file()


# ------------------------------------------------------------ image folders


def make_folder(root, rng):
    """Two classes of 32x32 images: RGB JPEGs, an RGB PNG and a greyscale PNG."""
    pixels = {}
    for cls, names in (("b_dog", ["1.png", "0.jpg", "g.PNG"]), ("a_cat", ["x.jpeg"])):
        os.makedirs(root / cls)
        for name in names:
            arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            grey = name.startswith("g")
            img = Image.fromarray(arr[:, :, 0] if grey else arr)  # 2-d uint8 is mode "L"
            img.save(root / cls / name)
            with Image.open(root / cls / name) as saved:  # JPEG is lossy: keep what was written
                pixels[f"{cls}/{name}"] = np.asarray(saved.convert("RGB"))
    (root / "a_cat" / "notes.txt").write_text("not an image")
    return pixels


def test_image_folder_layout_and_decoding(tmp_path, rng):
    pixels = make_folder(tmp_path / "imgs", rng)
    data = ImageFolderDataset(tmp_path / "imgs", cache_dir=tmp_path / "cache")
    assert data.classes == ["a_cat", "b_dog"] and data.labels.tolist() == [0, 1, 1, 1]
    order = ["a_cat/x.jpeg", "b_dog/0.jpg", "b_dog/1.png", "b_dog/g.PNG"]
    for i, key in enumerate(order):
        np.testing.assert_array_equal(data.images[i], pixels[key])
    assert (data.images[3, :, :, 0] == data.images[3, :, :, 2]).all()  # grey -> RGB
    img, label = data[1]
    assert img.dtype == np.float32 and img.shape == (3, 32, 32) and label == 1
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_image_folder_cache(tmp_path, rng, monkeypatch):
    make_folder(tmp_path / "imgs", rng)
    first = ImageFolderDataset(tmp_path / "imgs", cache_dir=tmp_path / "cache").images
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    def no_decoding(files):
        raise AssertionError("decoded again instead of reading the cache")

    with monkeypatch.context() as m:
        m.setattr(image_folder, "_decode", no_decoding)
        np.testing.assert_array_equal(
            ImageFolderDataset(tmp_path / "imgs", cache_dir=tmp_path / "cache").images, first)
    st = os.stat(tmp_path / "imgs" / "b_dog" / "0.jpg")
    os.utime(tmp_path / "imgs" / "b_dog" / "0.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    ImageFolderDataset(tmp_path / "imgs", cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # a touched file: new key

    ImageFolderDataset(tmp_path / "imgs", cache=False, cache_dir=tmp_path / "nocache")
    assert not (tmp_path / "nocache").exists()
    monkeypatch.setenv("NEEDLE_CACHE", str(tmp_path / "user-cache"))
    ImageFolderDataset(tmp_path / "imgs")  # default: $NEEDLE_CACHE, never beside the images
    assert len(list((tmp_path / "user-cache").glob("imgs-*.npy"))) == 1
    assert not (tmp_path / ".needle-cache").exists()


def test_default_cache_dir_is_in_home(tmp_path, monkeypatch):
    monkeypatch.delenv("NEEDLE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert image_folder.default_cache_dir() == str(tmp_path / "home" / ".cache" / "needle")


def test_image_folder_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="no class folders"):
        ImageFolderDataset(tmp_path)
    make_folder(tmp_path / "imgs", rng)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "b_dog" / "small.png")
    with pytest.raises(ValueError, match=r"small.png is 16x16, expected 32x32"):
        ImageFolderDataset(tmp_path / "imgs", cache=False)


@needs_shared
def test_image_folder_on_shared_cifar10_jpegs(tmp_path):
    data = ImageFolderDataset(os.path.join(SHARED, "test"), cache_dir=tmp_path, limit_per_class=2)
    assert data.classes == cifar10.CLASSES and len(data) == 20
    assert data.labels.tolist() == [i // 2 for i in range(20)]
    with Image.open(os.path.join(SHARED, "test", "bird", "0001.jpg")) as img:
        np.testing.assert_array_equal(data.images[5], np.asarray(img.convert("RGB")))
    loader = DataLoader(data, batch_size=8, shuffle=True, seed=0, device=REF)
    data.transforms = [RandomFlipHorizontal(), RandomCrop(padding=4)]
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8,) and x.device == REF
