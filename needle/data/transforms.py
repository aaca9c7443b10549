"""Random augmentations on one CHW float image (numpy), as used for CIFAR-10 training.

Each takes an optional ``generator`` (np.random.Generator); without one they
draw from numpy's global RNG.
"""

import numpy as np


class RandomFlipHorizontal:
    """Mirror the image left-right with probability p."""

    def __init__(self, p=0.5, generator=None):
        self.p = p
        self.rng = generator if generator is not None else np.random

    def __call__(self, img):
        return img[..., ::-1].copy() if self.rng.random() < self.p else img


class RandomCrop:
    """Shift the image by up to ``padding`` pixels each way, filling with zeros.

    Equivalent to zero-padding by ``padding`` and cropping a window of the
    original size at a random position.
    """

    def __init__(self, padding=3, generator=None):
        self.padding = padding
        self.rng = generator if generator is not None else np.random

    def __call__(self, img):
        p = self.padding
        h, w = img.shape[-2:]
        # random() exists on both np.random and Generator; floor maps it to 0..2p.
        dy, dx = (self.rng.random(2) * (2 * p + 1)).astype(int)
        padded = np.pad(img, [(0, 0)] * (img.ndim - 2) + [(p, p), (p, p)])
        return padded[..., dy:dy + h, dx:dx + w]
