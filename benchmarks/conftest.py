"""pytest-benchmark suites (benchmarks/test_bench_*.py): needle vs PyTorch per case.

    pytest benchmarks --benchmark-only                      # time at batch 64 (numpy: 8)
    pytest benchmarks --benchmark-disable                   # run each once, batch 2 (make test)

NEEDLE_DEVICES (comma-separated, default "cpu_numpy,cpu,cuda") picks the
backends, as in tests/; one that is not built or has no GPU is skipped with
the reason.  Each case compares needle's output with PyTorch's once (in its
needle run), so a fast wrong kernel fails here instead of hiding in a table.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402
import torch  # noqa: E402

import needle as ndl  # noqa: E402
from benchmarks.cases import batch_for, check, open_backend, prepare, set_threads  # noqa: E402

BACKENDS = [d.strip() for d in os.environ.get("NEEDLE_DEVICES", "cpu_numpy,cpu,cuda").split(",")
            if d.strip()]


@pytest.fixture(params=BACKENDS)
def backend(request):
    try:
        dev, tdev = open_backend(request.param)
    except ndl.DeviceUnavailable as err:
        pytest.skip(str(err))
    set_threads(os.cpu_count(), [dev])
    return request.param, dev, tdev


@pytest.fixture(params=["needle", "torch"])
def impl(request):
    return request.param


@pytest.fixture
def run_case(backend, impl, request, benchmark):  # backend first: a skip creates no benchmark
    """run_case(case): prepare the case, check it once, and hand one side to pytest-benchmark."""
    name, dev, tdev = backend
    smoke = request.config.getoption("benchmark_disable")

    def run(case):
        prepared = prepare(case, batch_for(name, "smoke" if smoke else "full"), dev, tdev)
        if impl == "needle":
            verdict, err = check(prepared)
            assert verdict == "ok", f"needle differs from PyTorch on {case.id} ({name}): {err}"
        fn = prepared.needle if impl == "needle" else prepared.torch
        # Needle and PyTorch of one shape and backend side by side in the report.
        benchmark.group = f"{case.kernel} {prepared.shape} {case.direction} [{name}]"
        benchmark.extra_info.update(backend=name, impl=impl, shape=prepared.shape,
                                    direction=case.direction, work=prepared.work,
                                    unit=prepared.unit)
        if tdev.type == "cuda":
            def timed():
                fn()
                dev.synchronize()
                torch.cuda.synchronize()
            benchmark(timed)
        else:
            benchmark(fn)

    return run
