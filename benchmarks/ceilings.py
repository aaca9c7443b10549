"""The machine's ceilings, measured in the same run as the kernels.

A ratio to PyTorch says who is faster; the ceiling says how much faster
anyone could be: SGEMM through torch.matmul bounds compute-bound kernels,
a large copy bounds memory-bound ones.  Both run at the benchmark's thread
count, so the percentages compare like with like.
"""

import numpy as np
import torch

from .timing import measure

# Square SGEMM side and copy size: large enough to leave the caches (48 MiB
# L3 here) and to keep a GPU busy, small enough to take a second or two.
SGEMM_N = {"cpu": 3072, "cuda": 8192}
COPY_FLOATS = {"cpu": 32 << 20, "cuda": 256 << 20}


def measure_ceilings(tdev, timer, repeats, min_sample_s):
    """{"sgemm_gflops", "copy_gbs", ...} for torch device tdev ("cpu" or "cuda")."""
    kind = tdev.type
    n = SGEMM_N[kind]
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(tdev)
    b = torch.randn(n, n, generator=gen).to(tdev)
    # copy_ into a preallocated buffer: clone() would also time the page
    # faults of a fresh allocation, which is not bandwidth.
    src = torch.ones(COPY_FLOATS[kind], device=tdev)
    dst = torch.empty_like(src)
    sides = {"sgemm": lambda: torch.matmul(a, b), "torch_copy": lambda: dst.copy_(src)}
    if kind == "cpu":
        # numpy's memcpy sometimes beats torch's copy kernel; the ceiling is
        # the best either reaches.
        nsrc, ndst = np.ones(COPY_FLOATS[kind], np.float32), np.empty(COPY_FLOATS[kind], np.float32)
        sides["numpy_copy"] = lambda: np.copyto(ndst, nsrc)
    stats, _ = measure(sides, timer, repeats, min_sample_s)
    copy_bytes = 2 * 4 * COPY_FLOATS[kind]  # read + write
    copies = {name: copy_bytes / stats[name].median / 1e9 for name in sides if name != "sgemm"}
    return {
        "sgemm_gflops": 2 * n ** 3 / stats["sgemm"].median / 1e9,
        "sgemm_n": n,
        "copy_gbs": max(copies.values()),
        "copy_bytes": copy_bytes,
        "copy_by": max(copies, key=copies.get),
    }
