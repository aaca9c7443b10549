"""Colorization pairs from any labelled image dataset, and where the images come from.

ColorizationDataset converts every image to Lab once, up front, with
needle's rgb_to_lab (colorization.lab), and keeps the network-scaled L and ab
arrays in memory: an epoch then costs no colour conversion at all.
"""

import os

import numpy as np

import needle as ndl

from .lab import rgb_to_lab_array, split_lab

DEFAULT_DATA = os.path.join("data", "cifar-10-batches-py")
CIFAR_FOLDER = "cifar-10-batches-py"
_DATA_HINT = ("Pass --data with a cifar-10-batches-py folder or an image folder "
              "(root/<class>/<image>, or root/train/<class>/<image> and root/test/<class>/<image>).")
# Share of a split-less image folder held out for validation.
VAL_FRACTION = 0.1


class DataUnavailable(RuntimeError):
    """The data a command asked for cannot be found or fetched; the message says what to do."""


class ColorizationDataset(ndl.data.Dataset):
    """Wraps a dataset with ``.images`` (uint8 N, H, W, 3) such as CIFAR10Dataset or
    ImageFolderDataset.

    A sample is (L/100 (1, H, W), ab/128 (2, H, W), sRGB (3, H, W) in [0, 1]),
    float32.  ``indices`` selects a subset of the wrapped images.  The arrays
    ``L`` (N, 1, H, W) and ``ab`` (N, 2, H, W) are public: the training loop
    slices whole batches out of them instead of stacking samples one by one.
    """

    def __init__(self, base, indices=None, device=None):
        super().__init__()
        images = base.images if indices is None else base.images[np.asarray(indices)]
        self.images = np.ascontiguousarray(images)
        self.labels = (np.asarray(base.labels) if indices is None
                       else np.asarray(base.labels)[np.asarray(indices)])
        self.classes = list(getattr(base, "classes", []))
        self.L, self.ab = split_lab(rgb_to_lab_array(to_chw_float(self.images), device))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.L[index], self.ab[index], to_chw_float(self.images[index:index + 1])[0]


def to_chw_float(images_u8):
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]."""
    return np.ascontiguousarray(images_u8.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def subset_indices(total, count, seed, stream=0):
    """Sorted indices of a seeded random subset of count out of total (all if count is None).

    Random rather than the first count: CIFAR batches and image folders are
    ordered (an image folder is sorted by class), so a prefix would be biased.
    ``stream`` separates draws made from one seed (train vs validation).
    """
    if count is None or count >= total:
        return np.arange(total)
    if count < 1:
        raise ValueError(f"a subset needs at least one image, got {count}")
    return np.sort(np.random.default_rng([seed, stream]).choice(total, size=count, replace=False))


def open_split(data, split, download=True):
    """The labelled image dataset of one split ("train" or "test") at path data.

    data may be a CIFAR-10 python-batches folder (``cifar-10-batches-py``,
    downloaded when missing and ``download``), an image folder with ``train/``
    and ``test/`` splits of ``<class>/<image>`` (such as the CIFAR-10 JPEG
    re-encoding), or a single ``<class>/<image>`` folder (which then serves
    every split; the caller holds out what it validates on).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if is_cifar_batches(data) or (not os.path.exists(data) and os.path.basename(
            os.path.normpath(data)) == CIFAR_FOLDER):
        # CIFAR10Dataset takes the batches folder or its parent; a missing
        # folder is downloaded into its parent.
        root = data if os.path.exists(data) else os.path.dirname(os.path.normpath(data)) or "."
        try:
            return ndl.data.CIFAR10Dataset(root, train=split == "train", download=download)
        except (RuntimeError, FileNotFoundError) as err:
            raise DataUnavailable(f"no CIFAR-10 data at {data}: {err}\n{_DATA_HINT}") from err
    folder = os.path.join(data, split) if has_splits(data) else data
    if not os.path.isdir(folder):
        raise DataUnavailable(f"{data} is neither a cifar-10-batches-py folder nor an image folder.\n"
                              f"{_DATA_HINT}")
    try:
        return ndl.data.ImageFolderDataset(folder)
    except FileNotFoundError as err:
        raise DataUnavailable(f"{err}\n{_DATA_HINT}") from err


def is_cifar_batches(path):
    return any(os.path.isfile(os.path.join(p, "data_batch_1")) or os.path.isfile(os.path.join(p, "test_batch"))
               for p in (path, os.path.join(path, CIFAR_FOLDER)))


def has_splits(path):
    return all(os.path.isdir(os.path.join(path, s)) for s in ("train", "test"))


def describe(data):
    """How reports name the data: the JPEG set is not bit-identical to CIFAR-10."""
    if is_cifar_batches(data) or os.path.basename(os.path.normpath(data)) == CIFAR_FOLDER:
        return "CIFAR-10"
    if "cifar10-jpeg" in os.path.normpath(data).split(os.sep):
        return "CIFAR-10 (JPEG re-encoding)"
    return f"image folder {data}"


def train_val_datasets(data, subset=None, val_subset=None, seed=0, device=None):
    """(train, validation) ColorizationDatasets of data, each a seeded random subset
    when subset / val_subset is given.  CIFAR batches and split folders validate on
    their test split; a split-less image folder holds out VAL_FRACTION of its
    images (disjoint from training)."""
    train_base = open_split(data, "train")
    if is_cifar_batches(data) or has_splits(data):
        val_base = open_split(data, "test")
        train_pool, val_pool = np.arange(len(train_base)), np.arange(len(val_base))
    else:
        val_base = train_base
        order = np.random.default_rng([seed, 2]).permutation(len(train_base))
        n_val = max(1, int(round(VAL_FRACTION * len(order))))
        train_pool, val_pool = np.sort(order[n_val:]), np.sort(order[:n_val])
    train_idx = train_pool[subset_indices(len(train_pool), subset, seed, stream=0)]
    val_idx = val_pool[subset_indices(len(val_pool), val_subset, seed, stream=1)]
    return (ColorizationDataset(train_base, train_idx, device),
            ColorizationDataset(val_base, val_idx, device))
