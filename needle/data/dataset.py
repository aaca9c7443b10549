"""Dataset and DataLoader: indexable samples, and batches of them as Tensors."""

import numpy as np

from ..autograd import Tensor


class Dataset:
    """A sized, indexable collection of samples (tuples of arrays or numbers).

    Subclasses implement __len__ and __getitem__; ``transforms`` (callables on
    one sample's image) are applied by ``apply_transforms``, in order.
    """

    def __init__(self, transforms=None):
        self.transforms = list(transforms) if transforms else []

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def apply_transforms(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x


class DataLoader:
    """Iterates over a dataset of tuple samples in batches: a tuple of float32 Tensors each,
    field k of every sample stacked along a new first axis.

    With ``shuffle`` the order is a fresh permutation every epoch, drawn from
    ``np.random.default_rng(seed)`` (created once, so two loaders with the same
    seed give the same sequence of epochs) or from numpy's global RNG when
    seed is None.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 device=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.device = device
        self._rng = np.random.default_rng(seed) if seed is not None else np.random

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            samples = [self.dataset[int(i)] for i in batch]
            yield tuple(Tensor(np.stack([np.asarray(field, dtype=np.float32) for field in fields]),
                               device=self.device)
                        for fields in zip(*samples))


class ImageDataset(Dataset):
    """Labelled images held in memory: the shared body of the image datasets.

    ``images`` is uint8 (N, H, W, 3), ``labels`` int64 (N,), ``classes`` the
    class names by label.  A sample is (float32 CHW image in [0, 1], int label)
    after the transforms.
    """

    def __init__(self, images, labels, classes, transforms=None):
        super().__init__(transforms)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} "
                             f"{images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"{len(images)} images but labels of shape {labels.shape}")
        self.images = images
        self.labels = labels.astype(np.int64)
        self.classes = list(classes)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        img = self.images[index].transpose(2, 0, 1).astype(np.float32) / 255.0
        return self.apply_transforms(img), int(self.labels[index])
