"""pytest-benchmark: one ColorizationNet training step (forward, CombinedLoss,
backward, Adam), needle vs PyTorch (see conftest.py)."""

import pytest

from benchmarks.cases import cases_of


@pytest.mark.parametrize("case", cases_of("train_step"), ids=str)
def test_train_step(run_case, case):
    run_case(case)
