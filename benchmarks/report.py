"""Output of a benchmark run: the printed table, the JSON files and the ratio chart.

The row format is documented in benchmarks/README.md; ``make_row`` is the
one place that fills it.
"""

import json
import os
import shutil

COLUMNS = (("backend", 9), ("kernel", 16), ("shape", 30), ("dir", 10), ("needle ms", 10),
           ("torch ms", 10), ("ratio", 7), ("needle rate", 17), ("%ceil", 6), ("check", 8))


def _ms(stats):
    return {"median": stats.median * 1e3, "min": stats.min * 1e3, "max": stats.max * 1e3}


def make_row(case, backend, torch_device, note, prepared=None, stats=None, check=None,
             ceilings=None, error=None):
    """One result row; ``error`` (a message) marks a row that could not run."""
    row = {"family": case.family, "kernel": case.kernel, "case": case.id,
           "direction": case.direction, "backend": backend, "torch_device": torch_device,
           "note": note,
           "shape": prepared.shape if prepared else case.label,
           "batch": prepared.batch if prepared else None,
           "status": "error" if error else "ok", "reason": error,
           "check": check[0] if check else None, "max_err": check[1] if check else None}
    if error or stats is None:
        return row
    needle, torch = stats["needle"], stats["torch"]
    row.update(needle_ms=_ms(needle), torch_ms=_ms(torch), repeats=needle.repeats,
               number={"needle": needle.number, "torch": torch.number},
               ratio=needle.median / torch.median, unit=prepared.unit,
               needle_rate=None, torch_rate=None, ceiling_pct=None)
    if prepared.work:
        row["needle_rate"] = prepared.work / needle.median / 1e9
        row["torch_rate"] = prepared.work / torch.median / 1e9
        ceiling = ceilings["sgemm_gflops" if prepared.unit == "GFLOP/s" else "copy_gbs"]
        row["ceiling_pct"] = 100.0 * row["needle_rate"] / ceiling
    return row


def header():
    names = " ".join(name.ljust(width) for name, width in COLUMNS)
    return f"{names}\n{'-' * len(names)}"


def format_row(row):
    if row["status"] != "ok":
        cells = [row["backend"], row["kernel"], row["shape"], row["direction"]]
        lead = " ".join(str(c).ljust(w) for c, (_, w) in zip(cells, COLUMNS))
        return f"{lead} {row['status']}: {row['reason']}"
    rate = (f"{row['needle_rate']:.1f} {row['unit']}" if row["needle_rate"] is not None else "-")
    pct = f"{row['ceiling_pct']:.0f}%" if row["ceiling_pct"] is not None else "-"
    cells = [row["backend"], row["kernel"], row["shape"], row["direction"],
             f"{row['needle_ms']['median']:.3f}", f"{row['torch_ms']['median']:.3f}",
             f"{row['ratio']:.2f}x", rate, pct, row["check"]]
    return " ".join(str(c).ljust(w) for c, (_, w) in zip(cells, COLUMNS))


def write_json(out_dir, stamp, payload):
    """bench-results/<stamp>.json and a copy as latest.json; returns the first path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{stamp}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    shutil.copyfile(path, os.path.join(out_dir, "latest.json"))
    return path


def plot_ratios(out_dir, stamp, rows):
    """A horizontal bar per case and backend: needle time / PyTorch time, log scale."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "ok"]
    if not done:
        return None
    labels = list(dict.fromkeys(r["case"] for r in done))
    backends = list(dict.fromkeys(r["backend"] for r in done))
    height = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.22 * len(labels) * len(backends)))
    for k, backend in enumerate(backends):
        mine = {r["case"]: r["ratio"] for r in done if r["backend"] == backend}
        ys = [i + k * height for i, lab in enumerate(labels) if lab in mine]
        ax.barh(ys, [mine[lab] for lab in labels if lab in mine], height=height, label=backend)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))], labels, fontsize=7)
    ax.invert_yaxis()
    ax.margins(y=0.005)
    ax.set_title(f"needle vs PyTorch, {stamp}")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("needle time / PyTorch time (lower is better; 1 = parity)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = os.path.join(out_dir, f"{stamp}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    shutil.copyfile(path, os.path.join(out_dir, "latest.png"))
    return path
