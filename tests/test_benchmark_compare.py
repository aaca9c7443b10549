"""benchmarks.compare pairs two runs' rows by case and backend."""

import json

from benchmarks import compare


def run_file(path, rows):
    path.write_text(json.dumps({"rows": rows}))
    return str(path)


def row(case, ratio, backend="cpu", batch=64, status="ok"):
    return {"case": case, "ratio": ratio, "backend": backend, "batch": batch, "status": status}


def test_compare_pairs_cases_of_one_backend(tmp_path, capsys):
    before = run_file(tmp_path / "a.json", [row("conv fwd", 2.0), row("conv bwd", 1.0),
                                            row("conv fwd", 9.0, backend="cuda")])
    after = run_file(tmp_path / "b.json", [row("conv fwd", 0.5, batch=16), row("concat fwd", 1.0),
                                           row("conv bwd", None, status="skipped")])
    compare.main([before, after])
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| conv fwd (batch 64 -> 16) | 2.00x | 0.50x | 0.25 |"
    assert len(out) == 3  # conv bwd was skipped after; concat was not timed before
