"""pytest-benchmark: channel concatenation forward and backward (split) at the three
skip shapes, needle vs PyTorch (see conftest.py)."""

import pytest

from benchmarks.cases import cases_of


@pytest.mark.parametrize("case", cases_of("concat"), ids=str)
def test_concat(run_case, case):
    run_case(case)
