"""How the network sees colour: the one Lab helper of the application.

The network reads L/100 (in [0, 1]) and predicts ab/128 (roughly [-1, 1]),
DESIGN.md's scales.  Every conversion, in the dataset, the loss, evaluation
and colorize, goes through needle's own rgb_to_lab / lab_to_rgb ops, so the
targets the network is trained on and the images it is judged by come from
the same arithmetic.
"""

import numpy as np

import needle as ndl

L_SCALE = 100.0
AB_SCALE = 128.0
# Images per conversion call: bounds the temporary memory of a bulk
# conversion (50,000 CIFAR images) without paying a call per image.
_CHUNK = 2048


def _convert(images, op, device):
    out = np.empty(images.shape, dtype=np.float32)
    with ndl.no_grad():
        for start in range(0, len(images), _CHUNK):
            chunk = ndl.Tensor(np.ascontiguousarray(images[start:start + _CHUNK], dtype=np.float32),
                               device=device)
            out[start:start + _CHUNK] = op(chunk).numpy()
    return out


def _check_nchw3(images, what):
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what} must be (N, 3, H, W), got shape {images.shape}")


def rgb_to_lab_array(rgb, device=None):
    """sRGB (N, 3, H, W) in [0, 1] -> Lab in Lab units, as a numpy float32 array."""
    rgb = np.asarray(rgb)
    _check_nchw3(rgb, "rgb")
    return _convert(rgb, ndl.rgb_to_lab, device)


def lab_to_rgb_array(lab, device=None):
    """Lab (N, 3, H, W) -> sRGB clipped to [0, 1] as a displayed or saved image would be."""
    lab = np.asarray(lab)
    _check_nchw3(lab, "lab")
    return np.clip(_convert(lab, ndl.lab_to_rgb, device), 0.0, 1.0)


def split_lab(lab):
    """Lab array (N, 3, H, W) -> network scales: L/100 (N, 1, H, W), ab/128 (N, 2, H, W)."""
    return ((lab[:, :1] / L_SCALE).astype(np.float32),
            (lab[:, 1:] / AB_SCALE).astype(np.float32))


def join_lab(L, ab):
    """Network scales back to one Lab array (numpy): the inverse of split_lab."""
    return np.concatenate([L * L_SCALE, ab * AB_SCALE], axis=1).astype(np.float32)


def compose_rgb(L, ab):
    """Differentiable sRGB (unclipped) from needle Tensors L/100 and ab/128.

    No clip: a clip would zero the gradient of every out-of-gamut pixel, the
    very pixels the loss must pull back.
    """
    return ndl.lab_to_rgb(ndl.concat([L * L_SCALE, ab * AB_SCALE], axis=1))
