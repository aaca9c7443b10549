"""Shared fixtures of the colorization tests: tiny image folders and checkpoints.

The images are synthetic (smooth colour gradients plus noise, one grey image
per class), so the tests need neither network nor the shared data set, and
small (16x16 by default) so that training steps take milliseconds.
"""

import os
import pickle

import numpy as np
from PIL import Image

import needle as ndl
from colorization.checkpoint import model_record
from colorization.features import CLASSIFIER_KIND, CifarClassifier
from colorization.model import ColorizationNet


def synthetic_images(n, size=16, seed=0):
    """n uint8 (size, size, 3) images: colour ramps with noise; image 0 is grey."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    images = []
    for i in range(n):
        base = rng.random(3)
        slope = rng.normal(0, 0.5, (2, 3))
        img = base + yy[..., None] * slope[0] + xx[..., None] * slope[1] + rng.normal(0, 0.05, (size, size, 3))
        if i == 0:
            img = img.mean(axis=2, keepdims=True).repeat(3, axis=2)
        images.append((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    return images


def make_image_folder(root, per_class=8, classes=("ant", "bee", "cat"), size=16, seed=0):
    """root/<class>/<i>.png; returns root."""
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i, img in enumerate(synthetic_images(per_class, size, seed * 100 + c)):
            Image.fromarray(img).save(os.path.join(root, name, f"{i:04d}.png"))
    return str(root)


def make_split_folder(root, train_per_class=8, test_per_class=4, size=16):
    """root/train/<class>/... and root/test/<class>/...; returns root."""
    make_image_folder(os.path.join(root, "train"), train_per_class, size=size, seed=1)
    make_image_folder(os.path.join(root, "test"), test_per_class, size=size, seed=2)
    return str(root)


def make_cifar_batches(root, per_batch=2, seed=0):
    """root/cifar-10-batches-py/ with the five training batches and the test batch in the
    official format (protocol-2 pickles of a uint8 (N, 3072) array and labels); returns
    the batches folder."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(x) for x in rng.integers(0, 10, per_batch)]}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return folder


def save_tiny_checkpoint(path, device=None, seed=0):
    """An untrained (seeded) ColorizationNet saved as a colorization checkpoint; returns path."""
    np.random.seed(seed)
    ndl.save(model_record(ColorizationNet(device=device), epoch=0), path)
    return str(path)


def save_tiny_classifier(path, device=None, classes=3, seed=0):
    np.random.seed(seed)
    net = CifarClassifier(widths=(4, 4, 8, 8), num_classes=classes, device=device)
    ndl.save({"kind": CLASSIFIER_KIND, "model": net.state_dict(), "config": net.config}, path)
    return str(path)
