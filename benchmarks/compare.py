"""Two `make bench` runs side by side: each case's needle/PyTorch ratio before and after.

    python -m benchmarks.compare benchmarks/results/cpu-2core-bench.json bench-results/latest.json

Prints a Markdown table (one row per case both runs timed on the backend,
default cpu), with the ratio's change; cases are matched by their ``case``
key, which names no batch size, so runs at different batches still pair up
(the table says when they differ).
"""

import argparse
import json


def load_rows(path, backend):
    with open(path) as f:
        payload = json.load(f)
    return {r["case"]: r for r in payload["rows"]
            if r["backend"] == backend and r["status"] == "ok" and r.get("ratio") is not None}


def table(before, after):
    lines = ["| case | before | after | after / before |", "|---|---|---|---|"]
    for case in before:
        if case in after:
            b, a = before[case], after[case]
            batch = "" if b["batch"] == a["batch"] else f" (batch {b['batch']} -> {a['batch']})"
            lines.append(f"| {case}{batch} | {b['ratio']:.2f}x | {a['ratio']:.2f}x | "
                         f"{a['ratio'] / b['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="JSON of the earlier run")
    p.add_argument("after", help="JSON of the later run")
    p.add_argument("--backend", default="cpu", help="backend rows to compare (default cpu)")
    args = p.parse_args(argv)
    print(table(load_rows(args.before, args.backend), load_rows(args.after, args.backend)))


if __name__ == "__main__":
    main()
