"""pytest-benchmark: nearest 2x upsampling forward and backward at the decoder's
three shapes, needle vs PyTorch (see conftest.py)."""

import pytest

from benchmarks.cases import cases_of


@pytest.mark.parametrize("case", cases_of("upsample"), ids=str)
def test_upsample(run_case, case):
    run_case(case)
