"""Moving values in and out of a backend module's flat Arrays (for the backend tests)."""

import numpy as np


def put(mod, values):
    """A new Array of mod holding values (flattened, float32)."""
    values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    arr = mod.Array(values.size)
    mod.from_numpy(values, arr)
    return arr


def get(mod, arr, n=None):
    """The first n (default all) elements of arr as a numpy array."""
    n = arr.size if n is None else n
    return mod.to_numpy(arr, (n,), (1,), 0)
