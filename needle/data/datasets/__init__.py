"""Datasets of labelled images: CIFAR-10's python batches, and any image folder."""

from .cifar10 import CIFAR10Dataset
from .image_folder import ImageFolderDataset
