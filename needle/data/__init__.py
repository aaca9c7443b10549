"""Data loading: datasets, batching into Tensors, and augmentations."""

from . import transforms
from .dataset import DataLoader, Dataset, ImageDataset
from .datasets import CIFAR10Dataset, ImageFolderDataset
from .transforms import RandomCrop, RandomFlipHorizontal
