"""The CPU backend's fast concat kernels against its plain C++ reference.

cpu.concat_forward/_backward (equal ranges of the joined array per thread,
one copy per run, streamed past the caches for large arrays) must reproduce
cpu.reference's serial element loop exactly, and both numpy's
concatenate/split: 1..4 pieces, widths 0..17 with zeros among them, odd row
counts, and shapes past the parallel threshold whose per-thread ranges start
and end inside rows and pieces; every ISA's copy, with plain and with
streaming stores (a private hook forces each).
"""

import importlib

import numpy as np
import pytest

from backend_helpers import get, put

try:
    cpu = importlib.import_module("needle.backend_ndarray.ndarray_backend_cpu")
except ImportError as err:  # pragma: no cover - depends on the build
    pytest.skip(f"ndarray_backend_cpu is not built ({err}); run `make build`", allow_module_level=True)

# The fixtures (every ISA, both store paths, thread counts) and the bitwise
# comparison are shared by the two reference tests.
from test_reference_upsample import same_bits, stores, threads  # noqa: E402,F401

# Past the backend's parallel threshold (2**15 elements): one long row (concat
# along the first axis), a few rows split mid-piece, zero widths at the ends.
LARGE = [(1, [40000, 3, 25000]), (3, [0, 20011, 0, 17]), (7, [4099, 1, 0, 2001]), (64, [1024, 1024]),
         (5, [30011, 0, 27003]), (1, [300001]), (64, [2053, 3, 2049, 1])]


def random_cases(seed, count=60):
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        widths = [int(w) for w in rng.integers(0, 18, int(rng.integers(1, 5)))]
        zeros = rng.random(len(widths)) < 0.25
        cases.append((int(rng.integers(0, 8)), [0 if z else w for z, w in zip(zeros, widths)]))
    return cases


def forward(mod, pieces, outer, widths):
    out = cpu.Array(outer * sum(widths))
    mod.concat_forward([put(cpu, p) for p in pieces], out, outer, widths)
    return get(cpu, out)


def backward(mod, joined, outer, widths):
    outs = [cpu.Array(outer * w) for w in widths]
    mod.concat_backward(put(cpu, joined), outs, outer, widths)
    return [get(cpu, o) for o in outs]


def check(rng, outer, widths):
    pieces = [rng.standard_normal(outer * w).astype(np.float32) for w in widths]
    expected = np.concatenate([p.reshape(outer, w) for p, w in zip(pieces, widths)], axis=1).reshape(-1)
    fast, ref = forward(cpu, pieces, outer, widths), forward(cpu.reference, pieces, outer, widths)
    assert same_bits(fast, ref), (outer, widths)
    assert same_bits(ref, expected)
    fast, ref = backward(cpu, expected, outer, widths), backward(cpu.reference, expected, outer, widths)
    for f, r, p in zip(fast, ref, pieces):
        assert same_bits(f, r), (outer, widths)
        assert same_bits(r, p)


@pytest.mark.parametrize("seed", range(3))
def test_matches_reference(isa, stores, seed):
    rng = np.random.default_rng(seed)
    for outer, widths in random_cases(seed):
        check(rng, outer, widths)


@pytest.mark.parametrize("case", LARGE, ids=str)
def test_large_shapes_split_across_threads(isa, stores, threads, case):
    check(np.random.default_rng(5), *case)


def test_outputs_larger_than_needed_keep_their_tail():
    """Only the first outer * width elements of each array are touched."""
    outer, widths = 3, [2, 5]
    for mod in (cpu, cpu.reference):
        out = put(cpu, np.full(outer * 7 + 4, 9, np.float32))
        mod.concat_forward([put(cpu, np.ones(6)), put(cpu, np.zeros(15))], out, outer, widths)
        assert np.all(get(cpu, out)[-4:] == 9)


@pytest.mark.parametrize("mod", ["fast", "reference"])
def test_both_paths_validate_alike(mod):
    m = cpu if mod == "fast" else cpu.reference
    a, b = cpu.Array(6), cpu.Array(6)
    with pytest.raises(ValueError, match="out must not be one of the inputs"):
        m.concat_forward([a, b], a, 1, [3, 3])
    with pytest.raises(ValueError, match="dy must not be one of the outputs"):
        m.concat_backward(a, [a, b], 1, [3, 3])
    with pytest.raises(ValueError, match="2 inputs arrays but 1 widths"):
        m.concat_forward([a, b], cpu.Array(12), 2, [3])
    with pytest.raises(ValueError, match=r"outs\[1\] holds 6 elements"):
        m.concat_backward(cpu.Array(14), [a, b], 2, [3, 4])
    with pytest.raises(ValueError, match="concat width"):
        m.concat_forward([a, b], cpu.Array(12), 1, [3, -1])
    with pytest.raises(ValueError, match="inputs\\[0\\] is None"):
        m.concat_forward([None, b], cpu.Array(12), 1, [3, 3])


def test_signatures_match():
    for name in ("concat_forward", "concat_backward"):
        assert getattr(cpu, name).__doc__ == getattr(cpu.reference, name).__doc__
