"""pytest-benchmark: conv2d forward, backward-input and backward-weight at the
network's nine 3x3 convolutions, needle vs PyTorch (see conftest.py)."""

import pytest

from benchmarks.cases import cases_of


@pytest.mark.parametrize("case", cases_of("conv"), ids=str)
def test_conv(run_case, case):
    run_case(case)
