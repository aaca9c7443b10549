"""pytest-benchmark: rgb_to_lab and lab_to_rgb, forward and vjp, at 32x32 and
512x512, needle vs PyTorch (see conftest.py)."""

import pytest

from benchmarks.cases import cases_of


@pytest.mark.parametrize("case", cases_of("colorspace"), ids=str)
def test_colorspace(run_case, case):
    run_case(case)
