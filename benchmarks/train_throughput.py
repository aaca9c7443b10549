"""End-to-end training throughput: needle's training loop against the same loop in PyTorch.

Both sides train ColorizationNet from the same initial weights for one epoch
over the same fixed subset of a dataset, in the same batch order, with the
same data loading (colorization.dataset, decoded once and cached), the
CombinedLoss and Adam; images per second are the subset size over the epoch's
wall time.  The two epochs are run alternately ``--repeats`` times and the
medians compared, so that a noisy machine slows both sides alike.

    python -m benchmarks.train_throughput --data ../shared/data/cifar10-jpeg --subset 1024
"""

import argparse
import time

import numpy as np
import torch
from tqdm import tqdm

import needle as ndl
from colorization.dataset import DataUnavailable, train_val_datasets
from colorization.losses import CombinedLoss
from colorization.model import ColorizationNet
from colorization.train import Averages, train_epoch

from . import torch_models


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset root, as for colorization.train")
    p.add_argument("--subset", type=int, default=1024, help="training images (default 1024)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="needle backend: cpu (default), cuda, cpu_numpy")
    p.add_argument("--threads", type=int, default=None, help="threads for both sides (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="epochs per side, alternating (default 3)")
    return p.parse_args(argv)


def torch_epoch(model, loss_fn, optimizer, data, order, batch_size, tdev, bar):
    model.train()
    avg = Averages()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        L = torch.from_numpy(data.L[idx]).to(tdev)
        ab = torch.from_numpy(data.ab[idx]).to(tdev)
        optimizer.zero_grad()
        total, terms = loss_fn(model(L), ab, L)
        total.backward()
        optimizer.step()
        avg.add(total.item(), {k: t.item() for k, t in terms.items()}, len(idx))
        bar.update(len(idx))
    return avg.means()


def main(argv=None):
    args = parse_args(argv)
    dev = getattr(ndl, args.device)()
    tdev = torch.device("cuda" if args.device == "cuda" else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
        dev.set_num_threads(args.threads)
    try:
        train, _ = train_val_datasets(args.data, args.subset, 1, seed=0, device=dev)
    except DataUnavailable as err:
        raise SystemExit(f"error: {err}") from err

    np.random.seed(0)
    model = ColorizationNet(device=dev)
    tmodel = torch_models.load_needle_state(torch_models.ColorizationNet(), model.state_dict()).to(tdev)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    tloss = torch_models.CombinedLoss(feature_net=torch_models.RandomFeatures().to(tdev))
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    sides = {
        "needle": lambda order, bar: train_epoch(
            model, CombinedLoss(), opt, train, order, args.batch_size, dev, bar, lambda: None),
        "torch": lambda order, bar: torch_epoch(
            tmodel, tloss, topt, train, order, args.batch_size, tdev, bar),
    }

    order = np.random.default_rng(0).permutation(len(train))
    rates, losses = {name: [] for name in sides}, {}
    for rep in range(args.repeats):
        for name, epoch in sides.items():
            with tqdm(total=len(train), desc=f"{name} epoch {rep + 1}/{args.repeats}", unit="img",
                      leave=False) as bar:
                started = time.perf_counter()
                means = epoch(order, bar)
                rates[name].append(len(train) / (time.perf_counter() - started))
            losses.setdefault(name, means["loss"])
    need, ref = np.median(rates["needle"]), np.median(rates["torch"])
    print(f"{len(train)} images, batch {args.batch_size}, {args.device} vs torch {tdev}, "
          f"threads {torch.get_num_threads()}, {args.repeats} epochs each (median)")
    print(f"needle {need:.1f} img/s (first-epoch loss {losses['needle']:.4f}), "
          f"torch {ref:.1f} img/s (first-epoch loss {losses['torch']:.4f}): "
          f"needle/torch throughput {need / ref:.2f}x")


if __name__ == "__main__":
    main()
