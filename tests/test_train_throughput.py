"""benchmarks.train_throughput runs both training loops and reports the same first loss."""

import re

from benchmarks import train_throughput
from colorization_helpers import make_split_folder


def test_throughput_runs_both_loops_from_the_same_weights(tmp_path, capsys):
    make_split_folder(tmp_path, train_per_class=2, size=32)
    train_throughput.main(["--data", str(tmp_path), "--subset", "4", "--batch-size", "2",
                           "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    losses = re.findall(r"first-epoch loss (\d+\.\d+)", out)
    assert len(losses) == 2 and abs(float(losses[0]) - float(losses[1])) < 1e-3, out
    assert re.search(r"needle/torch throughput \d+\.\d+x", out)
