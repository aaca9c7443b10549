"""Shared fixtures: the devices every parametrized test runs on.

NEEDLE_DEVICES (comma-separated, default "cpu_numpy,cpu,cuda") picks them;
a device that is not built or has no hardware is skipped with the reason.
"""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Decoded-image caches of the tests go beside the repository, not into the
# user's ~/.cache (ignored by git; kept between runs so the shared CIFAR
# images are decoded once).
os.environ.setdefault("NEEDLE_CACHE", os.path.join(ROOT, ".cache", "needle-tests"))

import needle as ndl  # noqa: E402

DEVICE_NAMES = [d.strip() for d in os.environ.get("NEEDLE_DEVICES", "cpu_numpy,cpu,cuda").split(",")
                if d.strip()]


def get_device(name):
    """The device called name, or pytest.skip with the reason it is unavailable."""
    try:
        return getattr(ndl, name)()
    except ndl.DeviceUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(params=DEVICE_NAMES)
def device(request):
    return get_device(request.param)


@pytest.fixture(params=[d for d in DEVICE_NAMES if d != "cpu_numpy"] or ["cpu"])
def fast_device(request):
    """The compiled backends only (for tests too slow on the numpy reference)."""
    return get_device(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# The C++ module's per-ISA paths (SGEMM micro-kernels, colour-space and
# upsample vector widths), widest first.
ISAS = ["avx512", "avx2", "generic"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Forces the C++ module's per-ISA paths to each ISA this CPU has, in turn."""
    try:
        cpu = __import__("needle.backend_ndarray.ndarray_backend_cpu", fromlist=["_set_isa"])
    except ImportError as err:
        pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`")
    try:
        cpu._set_isa(request.param)
    except ValueError:
        pytest.skip(f"this CPU lacks {request.param}")
    yield request.param
    cpu._set_isa(cpu._detected_isa())
