"""Every backend exports exactly the contract (needle/backend_ndarray/contract.py)."""

import importlib

import pytest

from needle.backend_ndarray.contract import ATTRIBUTES, FUNCTIONS, exported_functions

BACKENDS = ["ndarray_backend_numpy", "ndarray_backend_cpu", "ndarray_backend_cuda"]


def _import(name):
    try:
        return importlib.import_module(f"needle.backend_ndarray.{name}")
    except ImportError as err:
        pytest.skip(f"{name} is not built: {err}")


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_exports_exactly_the_contract(name):
    mod = _import(name)
    exported = exported_functions(mod)
    assert exported - set(FUNCTIONS) == set(), "functions outside the contract"
    assert set(FUNCTIONS) - exported == set(), "contract functions missing"
    for attr in ATTRIBUTES:
        assert hasattr(mod, attr), f"{name} lacks {attr}"


def test_cpu_and_cuda_export_the_same_set():
    cpu = _import("ndarray_backend_cpu")
    cuda = _import("ndarray_backend_cuda")
    assert exported_functions(cpu) == exported_functions(cuda)
