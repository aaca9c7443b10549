"""airspeed velocity benchmarks: the case table of benchmarks/cases.py under asv.

asv imports this folder as a top-level package of its own (named after the
folder), so the repository root is put on sys.path here for ``needle`` and
``benchmarks.cases``.  Each family's class (bench_*.py) takes its params from
the case table: shape x direction x backend (cpu, cuda), at the quick batch
(16) to keep a full ``asv run`` in minutes.

Methods per combination: time_needle and time_torch (asv's own timing),
peakmem_needle, track_rate (needle's GFLOP/s or GB/s) and track_ratio
(needle time / PyTorch time, interleaved by benchmarks.timing: the figure
that survives a noisy, shared machine).  A backend that is not built or has
no GPU raises NotImplementedError in setup, which asv reports as skipped.
"""

import functools
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import needle as ndl  # noqa: E402
from benchmarks.cases import batch_for, cases_of, open_backend, prepare, set_threads  # noqa: E402
from benchmarks.timing import CudaEventTimer, WallTimer, measure  # noqa: E402

# The compiled backends: their history is what tuning changes.  The numpy
# reference is left to `make bench`, where it runs once per run instead of
# five times per case.
BACKENDS = ("cpu", "cuda")
RATIO_REPEATS = 5
MIN_SAMPLE_S = 0.02


def grid(family, kernel=None):
    """params for a family's class: [shapes, directions, backends]."""
    cases = [c for c in cases_of(family) if kernel in (None, c.kernel)]
    return [list(dict.fromkeys(c.label for c in cases)),
            list(dict.fromkeys(c.direction for c in cases)), list(BACKENDS)]


@functools.lru_cache(maxsize=None)
def _prepared(family, kernel, label, direction, backend):
    """Built once per process: asv calls setup before every repeat."""
    try:
        dev, tdev = open_backend(backend)
    except ndl.DeviceUnavailable as err:
        raise NotImplementedError(str(err)) from err
    set_threads(os.cpu_count(), [dev])
    case = next(c for c in cases_of(family) if (c.kernel, c.label, c.direction) ==
                (kernel or c.kernel, label, direction))
    p = prepare(case, batch_for(backend, "quick"), dev, tdev)
    if tdev.type == "cuda":
        import torch

        def sync():
            dev.synchronize()
            torch.cuda.synchronize()
        return p, sync, CudaEventTimer(sync)
    return p, dev.synchronize, WallTimer(dev.synchronize)


class _Family:
    """Base of the asv classes; subclasses set family (and kernel), params and unit.

    The underscore keeps asv from taking the base itself for a benchmark.
    """

    family = None
    kernel = None
    param_names = ["shape", "direction", "backend"]
    # Fewer, shorter samples than asv's defaults: hundreds of combinations.
    rounds = 1
    repeat = (1, 5, 5.0)
    warmup_time = 0.05
    timeout = 600

    def setup(self, shape, direction, backend):
        self.p, self.sync, self.clock = _prepared(self.family, self.kernel, shape, direction,
                                                  backend)

    def time_needle(self, *_):
        self.p.needle()
        self.sync()

    def time_torch(self, *_):
        self.p.torch()
        self.sync()

    def peakmem_needle(self, *_):
        self.p.needle()

    def _medians(self):
        stats, _ = measure({"needle": self.p.needle, "torch": self.p.torch}, self.clock,
                           RATIO_REPEATS, MIN_SAMPLE_S)
        return stats["needle"].median, stats["torch"].median

    def track_rate(self, *_):
        return self.p.work / self._medians()[0] / 1e9

    def track_ratio(self, *_):
        needle, torch = self._medians()
        return needle / torch

    track_ratio.unit = "needle/torch"
