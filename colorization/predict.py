"""Inference shared by evaluate, colorize and the demo: numpy in, numpy out."""

import numpy as np

import needle as ndl

from .lab import join_lab, lab_to_rgb_array


def predict_ab(model, L, device=None, batch_size=64):
    """ab/128 (N, 2, H, W) the model predicts for L/100 (N, 1, H, W)."""
    model.eval()
    out = []
    with ndl.no_grad():
        for start in range(0, len(L), batch_size):
            x = ndl.Tensor(np.ascontiguousarray(L[start:start + batch_size], dtype=np.float32),
                           device=device)
            out.append(model(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2) + L.shape[2:], dtype=np.float32)


def to_rgb(L, ab, device=None):
    """The sRGB image (clipped to [0, 1]) of L/100 and ab/128, e.g. the grayscale baseline for ab = 0."""
    return lab_to_rgb_array(join_lab(L, ab), device)
