"""The one timing helper: needle and PyTorch measured side by side.

Shared machines drift (other jobs, turbo, thermal), so the two sides are
interleaved repeat by repeat and only their ratio is trusted; the order
alternates every repeat so neither side always runs on a cache the other
warmed.  A sample loops a call ``number`` times, calibrated from the warm-up
call so that short kernels are not lost in timer resolution.
"""

import math
import statistics
import time
from dataclasses import dataclass

import torch


@dataclass
class Stats:
    """Seconds per call over the repeats."""
    median: float
    min: float
    max: float
    repeats: int
    number: int


class WallTimer:
    """perf_counter between two synchronizations (CPU, or any device)."""

    def __init__(self, sync):
        self.sync = sync

    def sample(self, fn, number):
        self.sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        self.sync()
        return time.perf_counter() - start


class CudaEventTimer:
    """CUDA events on PyTorch's current stream, recorded after a full sync.

    Both sides are timed with the same events: needle's CUDA kernels run on
    the legacy default stream, which PyTorch's default stream is, so the end
    event completes only after them; the synchronize of every backend before
    the start event keeps earlier work out of the sample.
    """

    def __init__(self, sync):
        self.sync = sync

    def sample(self, fn, number):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        self.sync()
        start.record()
        for _ in range(number):
            fn()
        end.record()
        self.sync()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def measure(sides, timer, repeats, min_sample_s):
    """Times each zero-argument callable of ``sides`` ({name: fn}).

    One warm-up call per side (also timed, to pick ``number``), then
    ``repeats`` interleaved samples.  Returns ({name: Stats}, {name: output of
    the warm-up call}): the outputs let a caller check the results without
    paying for another call of an expensive case.
    """
    numbers, outputs = {}, {}
    for name, fn in sides.items():
        def keep(name=name, fn=fn):
            outputs[name] = fn()
        first = timer.sample(keep, 1)
        numbers[name] = max(1, min(10_000, math.ceil(min_sample_s / max(first, 1e-9))))
    samples = {name: [] for name in sides}
    order = list(sides)
    for r in range(repeats):
        for name in (order if r % 2 == 0 else order[::-1]):
            samples[name].append(timer.sample(sides[name], numbers[name]) / numbers[name])
    stats = {name: Stats(statistics.median(s), min(s), max(s), repeats, numbers[name])
             for name, s in samples.items()}
    return stats, outputs
