"""`make bench`: every kernel family and a training step, needle vs PyTorch, per backend.

    python -m benchmarks.run [--device cpu,cuda] [--filter conv] [--quick]
                             [--threads N] [--repeats N] [--out DIR] [--tf32]

Prints one row per case as it is measured, then writes DIR/<timestamp>.json,
DIR/latest.json and a PNG chart of the ratios (see benchmarks/README.md).
"""

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

import needle as ndl

from . import report
from .cases import CASES, FAMILIES, batch_for, compare, open_backend, prepare, set_threads
from .ceilings import measure_ceilings
from .timing import CudaEventTimer, WallTimer, measure

BACKENDS = ("cpu_numpy", "cpu", "cuda")
SCHEMA_VERSION = 1
CEILING_REPEATS = 5


@dataclass
class Plan:
    """How one backend is run: the batch and repeats, and the note that says so."""
    batch: int
    repeats: int
    min_sample_s: float
    note: str


def make_plan(backend, args):
    mode = "quick" if args.quick else "full"
    reference = backend == "cpu_numpy"
    repeats = args.repeats or (3 if args.quick or reference else 5)
    why = ["--quick"] * args.quick + ["numpy reference: smaller batch, fewer repeats"] * reference
    batch = batch_for(backend, mode)
    note = f"batch {batch}, {repeats} repeats" + (f" ({'; '.join(why)})" if why else "")
    # GPU samples are short: events resolve microseconds.
    return Plan(batch, repeats, 0.005 if backend == "cuda" else 0.02, note)


def _comma_list(values, allowed, what):
    names = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
    return names


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", action="append",
                   help="backend(s), repeatable or comma-separated: cpu_numpy, cpu, cuda "
                        "(default: every available one)")
    p.add_argument("--filter", action="append",
                   help=f"kernel family(ies), repeatable or comma-separated: {', '.join(FAMILIES)}")
    p.add_argument("--quick", action="store_true",
                   help="batch 16 (numpy reference: 4) and 3 repeats: a one-minute overview")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for both PyTorch and needle (default: every core, %(default)s)")
    p.add_argument("--repeats", type=int,
                   help="timed repeats per side (default 5; quick and numpy: 3)")
    p.add_argument("--out", default="bench-results",
                   help="folder for JSON and PNG (default %(default)s)")
    p.add_argument("--tf32", action="store_true",
                   help="let PyTorch use TF32 on CUDA (default: off, fp32 against fp32)")
    args = p.parse_args(argv)
    args.device = _comma_list(args.device, BACKENDS, "device") or list(BACKENDS)
    args.filter = _comma_list(args.filter, FAMILIES, "family") or list(FAMILIES)
    if args.threads < 1 or (args.repeats is not None and args.repeats < 1):
        p.error("--threads and --repeats must be >= 1")
    return args


def open_backends(names):
    """({name: (device, torch device)}, {name: reason it cannot run})."""
    opened, unavailable = {}, {}
    for name in names:
        try:
            opened[name] = open_backend(name)
        except ndl.DeviceUnavailable as err:
            unavailable[name] = str(err)
    return opened, unavailable


def make_timer(name, dev):
    if name == "cuda":
        return CudaEventTimer(lambda: (dev.synchronize(), torch.cuda.synchronize()))
    return WallTimer(dev.synchronize)


def all_ceilings(opened, args):
    """Ceilings per torch device ("cpu" is shared by cpu_numpy and cpu), printed."""
    ceilings = {}
    for name, (dev, tdev) in opened.items():
        if tdev.type in ceilings:
            continue
        plan = make_plan(name, args)
        c = ceilings[tdev.type] = measure_ceilings(tdev, make_timer(name, dev),
                                                   CEILING_REPEATS, plan.min_sample_s)
        print(f"ceilings on {tdev.type}: SGEMM {c['sgemm_gflops']:.0f} GFLOP/s (torch.matmul "
              f"{c['sgemm_n']}^2), copy {c['copy_gbs']:.1f} GB/s ({c['copy_by']})")
    return ceilings


def run_case(case, name, dev, tdev, plan, timer, ceilings):
    try:
        prepared = prepare(case, plan.batch, dev, tdev)
        stats, first = measure({"needle": prepared.needle, "torch": prepared.torch}, timer,
                               plan.repeats, plan.min_sample_s)
        verdict = compare(prepared, first["needle"], first["torch"])
    except Exception as err:  # noqa: BLE001  a row that cannot run says why instead of vanishing
        return report.make_row(case, name, tdev.type, plan.note,
                               error=f"{type(err).__name__}: {err}")
    return report.make_row(case, name, tdev.type, plan.note, prepared, stats, verdict, ceilings)


def run_backend(name, dev, tdev, cases, args, ceilings):
    """Every case on one backend, each row printed as soon as it is measured."""
    plan = make_plan(name, args)
    print(f"\n{name} vs torch {tdev.type}: {plan.note}\n{report.header()}")
    timer = make_timer(name, dev)
    rows = []
    for case in cases:
        rows.append(run_case(case, name, dev, tdev, plan, timer, ceilings))
        print(report.format_row(rows[-1]), flush=True)
    summary = {"status": "ok", "torch_device": tdev.type, "batch": plan.batch,
               "repeats": plan.repeats, "note": plan.note}
    return rows, summary


def host_info():
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "loadavg": os.getloadavg()[0],
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    if torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
    opened, unavailable = open_backends(args.device)
    set_threads(args.threads, [dev for dev, _ in opened.values()])
    print(f"needle vs PyTorch {torch.__version__}: threads {args.threads} "
          f"(torch {torch.get_num_threads()}"
          + "".join(f", {n} {d.get_num_threads()}" for n, (d, _) in opened.items())
          + f"), TF32 {'on' if args.tf32 else 'off'}")
    load = os.getloadavg()[0]
    if args.threads > 1 and load > os.cpu_count() - 0.5:
        print(f"warning: load average {load:.1f} on {os.cpu_count()} cores: parallel regions will "
              f"wait for descheduled threads; --threads 1 compares more fairly on a busy machine")
    backends = {}
    for name, reason in unavailable.items():
        print(f"{name}: skipped: {reason}")
        backends[name] = {"status": "unavailable", "reason": reason}
    ceilings = all_ceilings(opened, args)

    cases = [c for c in CASES if c.family in args.filter]
    rows = []
    for name, (dev, tdev) in opened.items():
        backend_rows, backends[name] = run_backend(name, dev, tdev, cases, args,
                                                   ceilings[tdev.type])
        rows += backend_rows

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    payload = {"schema_version": SCHEMA_VERSION, "timestamp": stamp,
               "argv": sys.argv[1:] if argv is None else list(argv), "threads": args.threads,
               "tf32": args.tf32, "quick": args.quick, "host": host_info(), "ceilings": ceilings,
               "backends": backends, "rows": rows, "elapsed_s": time.perf_counter() - started}
    path = report.write_json(args.out, stamp, payload)
    chart = report.plot_ratios(args.out, stamp, rows)
    bad = sum(r["status"] != "ok" or r["check"] != "ok" for r in rows)
    print(f"\n{len(rows)} rows ({bad} failed or mismatched) in {payload['elapsed_s']:.0f} s; "
          f"wrote {path}" + (f" and {chart}" if chart else ""))


if __name__ == "__main__":
    main()
