"""The one case table: every kernel family's shapes, and how to run each on both sides.

run.py (``make bench``), the asv classes and the pytest-benchmark suites all
draw from CASES and ``prepare``; a case names no batch size, so each entry
point picks its own (64 for the full run, smaller for quick and smoke runs).

The needle side calls the backend kernels directly on compact NDArray
buffers, as ops do, so the figures are the kernels' and not the autograd
bookkeeping's; the train step is the exception, timed end to end through
the framework.  The PyTorch side uses PyTorch's own operators.
"""

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

import needle as ndl
from needle.backend_ndarray import ndarray_backend_numpy as reference
from needle.backend_ndarray.ndarray import NDArray

FAMILIES = ("conv", "upsample", "concat", "colorspace", "train_step")

# The colorization network's nine 3x3 convolutions, padding 1:
# (in channels, out channels, input size, stride).
CONV_SPECS = ((1, 64, 32, 1), (64, 128, 32, 2), (128, 256, 16, 2), (256, 512, 8, 2),
              (512, 512, 4, 1), (512, 256, 8, 1), (512, 128, 16, 1), (256, 64, 32, 1),
              (128, 2, 32, 1))
# The decoder's nearest 2x upsamplings: (channels, input size).
UPSAMPLE_SPECS = ((512, 4), (512, 8), (256, 16))
# The skip concatenations along channels: (decoder channels, skip channels, size).
CONCAT_SPECS = ((256, 256, 8), (128, 128, 16), (64, 64, 32))
# Colour conversion at the network's size and at one photo-like size; the
# large one runs a quarter of the batch (16 x 3 x 512 x 512 at batch 64).
COLOR_SPECS = ((32, 1), (512, 4))
KERNEL_SIZE, PADDING, UPSCALE = 3, 1, 2
IMAGE_SIZE = 32

# Batch per kind of run: "full" is issue 4's batch 64, "quick" an overview,
# "smoke" only proves that every case runs (pytest --benchmark-disable).  The
# numpy reference is 10-100x slower than the compiled backends: at batch 64
# it alone would spend the whole time budget.
BATCH = {"full": 64, "quick": 16, "smoke": 2}
REFERENCE_BATCH = {"full": 8, "quick": 4, "smoke": 2}


def batch_for(backend, mode):
    return (REFERENCE_BATCH if backend == "cpu_numpy" else BATCH)[mode]


def open_backend(name):
    """(needle device, torch device) of a backend name; DeviceUnavailable says why not."""
    dev = getattr(ndl, name)()
    if name == "cuda" and not torch.cuda.is_available():
        raise ndl.DeviceUnavailable(
            f"needle.cuda() works but this PyTorch ({torch.__version__}) has no CUDA, so there is "
            "nothing to compare with; install a CUDA build of torch")
    return dev, torch.device("cuda" if name == "cuda" else "cpu")


def set_threads(n, devices):
    """The same thread count for PyTorch and every needle backend."""
    torch.set_num_threads(n)
    for dev in devices:
        dev.set_num_threads(n)


@dataclass(frozen=True)
class Case:
    family: str
    kernel: str
    spec: tuple
    direction: str
    label: str  # the spec without the batch: stable across batch sizes

    @property
    def id(self):
        return f"{self.kernel} {self.label} {self.direction}"

    def __str__(self):  # test ids: no spaces, so that -k and shells take them
        return self.id.replace(" ", "-")


@dataclass
class Prepared:
    """A case ready to time: two zero-argument callables that return their output."""
    shape: str
    batch: int
    needle: Callable[[], Any]
    torch: Callable[[], Any]
    work: Optional[float]  # FLOPs or bytes per call; None where no rate is meaningful
    unit: Optional[str]  # "GFLOP/s" or "GB/s"
    rtol: float = 1e-4  # of the output's largest magnitude, for the one-off check
    expected: Optional[Callable[[], Any]] = None  # what the check compares with, if not .torch


def _cases():
    out = []
    for c, o, size, stride in CONV_SPECS:
        for direction in ("fwd", "bwd_input", "bwd_weight"):
            out.append(Case("conv", "conv2d", (c, o, size, stride), direction,
                            f"{c}->{o} s{stride} @{size}"))
    for c, size in UPSAMPLE_SPECS:
        for direction in ("fwd", "bwd"):
            out.append(Case("upsample", "upsample_nearest", (c, size), direction, f"{c} @{size}"))
    for c1, c2, size in CONCAT_SPECS:
        for direction in ("fwd", "bwd"):
            out.append(Case("concat", "concat", (c1, c2, size), direction, f"{c1}+{c2} @{size}"))
    for kernel in ("rgb_to_lab", "lab_to_rgb"):
        for size, div in COLOR_SPECS:
            for direction in ("fwd", "bwd"):
                out.append(Case("colorspace", kernel, (size, div), direction, f"@{size}"))
    out.append(Case("train_step", "train_step", (IMAGE_SIZE,), "step", f"@{IMAGE_SIZE}"))
    return tuple(out)


CASES = _cases()


def cases_of(family):
    return [c for c in CASES if c.family == family]


def prepare(case, batch, dev, tdev, seed=0):
    """Inputs on both sides, built once; the callables only run the kernels."""
    return _BUILDERS[case.family](case, batch, _Inputs(dev, tdev, seed))


class _Inputs:
    """The same random numpy arrays handed to both sides."""

    def __init__(self, dev, tdev, seed):
        self.dev, self.tdev = dev, tdev
        self.rng = np.random.default_rng(seed)

    def pair(self, shape, low=None, high=None):
        if low is None:
            a = self.rng.standard_normal(shape, dtype=np.float32)
        else:
            a = self.rng.uniform(low, high, shape).astype(np.float32)
        return NDArray(a, device=self.dev), torch.from_numpy(a).to(self.tdev)

    def empty(self, shape):
        return NDArray.make(shape, device=self.dev)


def _dims(shape):
    return "x".join(str(s) for s in shape)


# ---------------------------------------------------------------- conv


def _conv(case, n, io):
    c, o, size, stride = case.spec
    k, pad = KERNEL_SIZE, PADDING
    ho = (size + 2 * pad - k) // stride + 1
    (x, tx), (w, tw), (b, tb) = io.pair((n, c, size, size)), io.pair((o, c, k, k)), io.pair((o,))
    (dy, tdy) = io.pair((n, o, ho, ho))
    sizes = (n, c, size, size, o, k, k, stride, pad)
    dev = io.dev

    def torch_backward(mask):
        # PyTorch's own backward kernels, without an autograd graph around them.
        return torch.ops.aten.convolution_backward(
            tdy, tx, tw, [o], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1, mask)

    if case.direction == "fwd":
        def needle():
            out = io.empty((n, o, ho, ho))
            dev.conv2d_forward(x._handle, w._handle, b._handle, out._handle, *sizes)
            return out

        def reference_side():
            return torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
    elif case.direction == "bwd_input":
        def needle():
            dx = io.empty((n, c, size, size))
            dev.conv2d_backward_input(dy._handle, w._handle, dx._handle, *sizes)
            return dx

        def reference_side():
            return torch_backward([True, False, False])[0]
    else:
        def needle():
            dw = io.empty((o, c, k, k))
            dev.conv2d_backward_weight(x._handle, dy._handle, dw._handle, *sizes)
            return dw

        def reference_side():
            return torch_backward([False, True, False])[1]
    flops = 2 * n * o * ho * ho * c * k * k
    return Prepared(f"{_dims((n, c, size, size))}->{_dims((n, o, ho, ho))}", n, needle,
                    reference_side, flops, "GFLOP/s")


# ---------------------------------------------------------------- upsample


def _upsample(case, n, io):
    c, size = case.spec
    big, dev = size * UPSCALE, io.dev
    if case.direction == "fwd":
        x, tx = io.pair((n, c, size, size))

        def needle():
            out = io.empty((n, c, big, big))
            dev.upsample_nearest_forward(x._handle, out._handle, n * c, size, size, UPSCALE)
            return out

        def reference_side():
            return torch.nn.functional.interpolate(tx, scale_factor=UPSCALE, mode="nearest")
    else:
        dy, tdy = io.pair((n, c, big, big))

        def needle():
            dx = io.empty((n, c, size, size))
            dev.upsample_nearest_backward(dy._handle, dx._handle, n * c, size, size, UPSCALE)
            return dx

        def reference_side():
            return torch.ops.aten.upsample_nearest2d_backward(
                tdy, [big, big], [n, c, size, size], float(UPSCALE), float(UPSCALE))
    bytes_moved = 4 * n * c * size * size * (1 + UPSCALE * UPSCALE)
    return Prepared(f"{_dims((n, c, size, size))}->{_dims((n, c, big, big))}", n, needle,
                    reference_side, bytes_moved, "GB/s")


# ---------------------------------------------------------------- concat


def _concat(case, n, io):
    c1, c2, size = case.spec
    hw, dev = size * size, io.dev
    widths = [c1 * hw, c2 * hw]
    if case.direction == "fwd":
        (a, ta), (b, tb) = io.pair((n, c1, size, size)), io.pair((n, c2, size, size))

        def needle():
            out = io.empty((n, c1 + c2, size, size))
            dev.concat_forward([a._handle, b._handle], out._handle, n, widths)
            return out

        def reference_side():
            return torch.cat([ta, tb], dim=1)
    else:
        dy, tdy = io.pair((n, c1 + c2, size, size))

        def needle():
            da, db = io.empty((n, c1, size, size)), io.empty((n, c2, size, size))
            dev.concat_backward(dy._handle, [da._handle, db._handle], n, widths)
            return [da, db]

        def reference_side():
            # needle hands back compact arrays, so PyTorch's split views are copied too.
            return [t.contiguous() for t in torch.split(tdy, [c1, c2], dim=1)]
    bytes_moved = 2 * 4 * n * (c1 + c2) * hw
    return Prepared(f"{_dims((n, c1, size, size))}+{_dims((n, c2, size, size))}", n, needle,
                    reference_side, bytes_moved, "GB/s")


# ---------------------------------------------------------------- colorspace


@functools.lru_cache(maxsize=None)
def _constant(name, dtype, device):
    """A matrix of the reference backend as a tensor, made once: on a GPU a copy
    to the device per call would be timed as PyTorch's."""
    return torch.as_tensor(getattr(reference, name), dtype=dtype, device=device)


def torch_rgb_to_lab(x):
    """sRGB (N,3,H,W) -> Lab composed of PyTorch operators, the reference backend's constants.

    The counterpart of benchmarks.torch_models.lab_to_rgb (which the
    colorization loss needs; this direction only the benchmark does).  Each
    torch.where branch sees a clamped input so that the branch not taken has a
    finite gradient (0 * inf would be NaN).
    """
    m = _constant("RGB_TO_T", x.dtype, x.device)
    eps, kappa, offset = reference.LAB_EPSILON, reference.LAB_KAPPA, reference.LAB_OFFSET
    lin = torch.where(x > 0.04045, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    t = torch.einsum("ij,njhw->nihw", m, lin)
    f = torch.where(t > eps, t.clamp(min=eps) ** (1.0 / 3.0), kappa * t + offset)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def _colorspace(case, n, io):
    # Imported here so that a colorization package in the middle of a change
    # costs the rows that need it, not the whole run.
    from .torch_models import lab_to_rgb as torch_lab_to_rgb

    size, div = case.spec
    n = max(1, n // div)
    hw, dev = size * size, io.dev
    forward_kernel = getattr(dev, case.kernel)
    vjp_kernel = getattr(dev, case.kernel + "_vjp")
    torch_forward = torch_rgb_to_lab if case.kernel == "rgb_to_lab" else torch_lab_to_rgb
    # Inputs in each conversion's usual range, per channel; Lab beyond the
    # sRGB gamut is fine, nothing is clipped.
    low, high = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) if case.kernel == "rgb_to_lab" else (
        (0.0, -60.0, -60.0), (100.0, 60.0, 60.0))
    shape = (n, 3, size, size)
    x, tx = io.pair(shape, np.reshape(low, (1, 3, 1, 1)), np.reshape(high, (1, 3, 1, 1)))
    dy, tdy = io.pair(shape)

    def torch_side(tx, tdy):
        if case.direction == "fwd":
            return lambda: torch_forward(tx)
        tx_grad = tx.clone().requires_grad_(True)
        # The graph is built once: PyTorch's backward reuses what its
        # forward saved, while needle's vjp kernel recomputes from x.
        ty = torch_forward(tx_grad)
        return lambda: torch.autograd.grad(ty, tx_grad, tdy, retain_graph=True)[0]

    def needle():
        out = io.empty(shape)
        if case.direction == "fwd":
            forward_kernel(x._handle, out._handle, n, hw)
        else:
            vjp_kernel(x._handle, dy._handle, out._handle, n, hw)
        return out

    moved = 2 if case.direction == "fwd" else 3  # x (and dy) read, one array written
    # Checked against PyTorch in float64: in float32 a pixel next to one of the
    # piecewise kinks (gamma 0.0031308, cube root 0.2069) can land on the other
    # branch than the exact value does, and the slopes differ there by ~1.5%.
    return Prepared(_dims(shape), n, needle, torch_side(tx, tdy), moved * 4 * n * 3 * hw, "GB/s",
                    expected=lambda: torch_side(tx.double(), tdy.double())())


# ---------------------------------------------------------------- train step


def _train_step(case, n, io):
    from colorization.losses import CombinedLoss
    from colorization.model import ColorizationNet
    from colorization.train import train_step

    from . import torch_models

    (size,) = case.spec
    model = ColorizationNet(device=io.dev)
    model.train()
    tmodel = torch_models.load_needle_state(torch_models.ColorizationNet(), model.state_dict())
    tmodel.to(io.tdev)
    (L, tL) = io.pair((n, 1, size, size), 0.0, 1.0)
    (ab, tab) = io.pair((n, 2, size, size), -0.5, 0.5)
    L, ab = ndl.Tensor(L, device=io.dev), ndl.Tensor(ab, device=io.dev)
    loss = CombinedLoss()
    tloss = torch_models.CombinedLoss(feature_net=torch_models.RandomFeatures().to(io.tdev))
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)

    def needle():
        return train_step(model, loss, opt, L, ab)[0]

    def reference_side():
        # The same work as colorization.train.train_step, reading every term back.
        topt.zero_grad()
        total, terms = tloss(tmodel(tL), tab, tL)
        total.backward()
        topt.step()
        return total.item(), {name: t.item() for name, t in terms.items()}

    # The check compares the first step's loss, taken from identical weights.
    return Prepared(_dims((n, 1, size, size)), n, needle, lambda: reference_side()[0], None, None,
                    rtol=1e-3)


_BUILDERS = {"conv": _conv, "upsample": _upsample, "concat": _concat, "colorspace": _colorspace,
             "train_step": _train_step}


# ---------------------------------------------------------------- the one-off check


def _flat(out):
    """An output of either side (array, tensor, loss, or a list of them) as one float64 vector."""
    if isinstance(out, (list, tuple)):
        return np.concatenate([_flat(o) for o in out])
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    elif hasattr(out, "numpy"):  # a needle NDArray or Tensor
        out = out.numpy()
    return np.asarray(out, dtype=np.float64).reshape(-1)


def compare(prepared, needle_out, torch_out):
    """("ok" | "mismatch", max |needle - reference| / max |reference|), the reference being
    PyTorch's output (or ``prepared.expected()``); the error is None where it is not
    finite (other shapes, NaN, Inf: JSON has no NaN).

    The error is relative to the output's largest magnitude, as fp32 sums of
    hundreds of terms carry an absolute error of that scale.
    """
    got = _flat(needle_out)
    want = _flat(prepared.expected() if prepared.expected else torch_out)
    if got.shape != want.shape:
        return "mismatch", None
    err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))
    if not np.isfinite(err):
        return "mismatch", None
    return ("ok" if err <= prepared.rtol else "mismatch"), err


def check(prepared):
    """Runs each side once and compares them."""
    return compare(prepared, prepared.needle(), prepared.torch())
