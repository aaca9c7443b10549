"""Train the colorization network: ``python -m colorization.train`` (or ``make train ARGS="..."``).

The seed's recipe by default (20 epochs, batch 64, Adam 1e-3, loss weights
1.0 / 0.1 / 0.05 on CIFAR-10).  Each epoch shuffles with a permutation drawn
from one seeded generator whose state is saved with the model and the
optimizer after every epoch, so ``--resume`` after a crash replays exactly the
batches the uninterrupted run would have seen.
"""

import argparse
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import needle as ndl

from . import checkpoint as ckpt
from .cli import add_device_argument, get_device
from .dataset import DEFAULT_DATA, DataUnavailable, describe, train_val_datasets
from .features import feature_net
from .history import plot_losses, write_jsonl
from .losses import CombinedLoss
from .model import ColorizationNet

# Settings a resumed run must share with the run that wrote the checkpoint:
# any of them changed would make the continuation a different training.
RESUME_SETTINGS = ("data", "batch_size", "lr", "l1_weight", "ssim_weight", "perceptual_weight",
                   "subset", "val_subset", "seed", "batch_norm", "perceptual_checkpoint")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m colorization.train",
        description="Train the colorization U-Net (L/100 in, ab/128 out) with L1 + SSIM + perceptual loss.")
    p.add_argument("--data", default=DEFAULT_DATA,
                   help="a cifar-10-batches-py folder (downloaded if missing) or an image folder: "
                        "root/<class>/<image>, or root/train and root/test laid out so "
                        "(default: %(default)s)")
    add_device_argument(p)
    p.add_argument("--epochs", type=int, default=20, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--l1-weight", type=float, default=1.0, help="weight of L1 on ab/128 (default: %(default)s)")
    p.add_argument("--ssim-weight", type=float, default=0.1,
                   help="weight of 1 - SSIM on the RGB image (default: %(default)s)")
    p.add_argument("--perceptual-weight", type=float, default=0.05,
                   help="weight of the feature-map L1 distance (default: %(default)s)")
    p.add_argument("--perceptual-checkpoint", default=None,
                   help="a CIFAR-10 classifier checkpoint (python -m colorization.classifier) whose "
                        "early features give the perceptual loss; default: seeded random features")
    p.add_argument("--batch-norm", action="store_true", help="BatchNorm after every conv of the U-Net")
    p.add_argument("--subset", type=int, default=None, help="train on a seeded random subset of N images")
    p.add_argument("--val-subset", type=int, default=None, help="validate on a seeded random subset of N images")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights, the subsets and the shuffling")
    p.add_argument("--out", default="checkpoints",
                   help="folder for colorization_epoch_{N}.pkl, colorization_last.pkl, metrics.jsonl "
                        "and loss_curve.png; the .pkl files are needle safe-format files (no pickle, "
                        "nothing runs on load) under the seed's names (default: %(default)s)")
    p.add_argument("--save-every", type=int, default=5,
                   help="write colorization_epoch_{N}.pkl every N epochs and after the last (default: %(default)s)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: OUT/colorization_last.pkl) exactly where "
                        "it stopped; --epochs may be raised to train longer")
    # For the kill-and-resume test: after N optimizer steps the process ends at
    # once, with no clean-up, as a crash or a kill would end it.
    p.add_argument("--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "save_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    # Absolute paths: a resumed run started from another folder is the same training.
    args.data = os.path.abspath(args.data)
    if args.perceptual_checkpoint:
        args.perceptual_checkpoint = os.path.abspath(args.perceptual_checkpoint)
    return args


def settings_of(args):
    return {name: getattr(args, name) for name in RESUME_SETTINGS}


def train_step(model, loss_fn, optimizer, L, ab):
    """One Adam step on a batch; returns the total loss and the unweighted terms as floats."""
    optimizer.zero_grad()
    total, terms = loss_fn(model(L), ab, L)
    total.backward()
    optimizer.step()
    return total.item(), {name: t.item() for name, t in terms.items()}


class Averages:
    """Image-weighted running means of the total loss and each term."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, total, terms, n):
        for name, value in {"loss": total, **terms}.items():
            self.sums[name] = self.sums.get(name, 0.0) + value * n
        self.count += n

    def means(self):
        return {name: s / self.count for name, s in self.sums.items()}


def batch_tensors(data, idx, device):
    """(L, ab) tensors of the samples at idx."""
    return ndl.Tensor(data.L[idx], device=device), ndl.Tensor(data.ab[idx], device=device)


def train_epoch(model, loss_fn, optimizer, data, order, batch_size, device, bar, on_step):
    model.train()
    avg = Averages()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        L, ab = batch_tensors(data, idx, device)
        total, terms = train_step(model, loss_fn, optimizer, L, ab)
        avg.add(total, terms, len(idx))
        bar.set_postfix(loss=f"{avg.means()['loss']:.4f}", refresh=False)
        bar.update(len(idx))
        on_step()
    return avg.means()


def validate(model, loss_fn, data, batch_size, device):
    model.eval()
    avg = Averages()
    with ndl.no_grad():
        for start in range(0, len(data), batch_size):
            L, ab = batch_tensors(data, np.arange(start, min(start + batch_size, len(data))), device)
            total, terms = loss_fn(model(L), ab, L)
            avg.add(total.item(), {k: t.item() for k, t in terms.items()}, L.shape[0])
    return avg.means()


def banner(args, device, train, val, model, data_name):
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    perceptual = args.perceptual_checkpoint or "seeded random conv features"
    lines = [
        "=" * 80, "Image Colorization Training", "=" * 80,
        f"Device: {device.name}",
        f"Data: {args.data} [{data_name}]",
        f"Training samples: {len(train)}",
        f"Validation samples: {len(val)}",
        f"Batch size: {args.batch_size}",
        f"Epochs: {args.epochs}",
        f"Learning rate: {args.lr}",
        f"Loss weights: l1 {args.l1_weight}, ssim {args.ssim_weight}, "
        f"perceptual {args.perceptual_weight} ({perceptual})",
        f"Model: ColorizationNet{' with BatchNorm' if args.batch_norm else ''}, "
        f"{n_params / 1e6:.2f}M parameters",
        f"Seed: {args.seed}",
        f"Output: {args.out}",
        "=" * 80,
    ]
    print("\n".join(lines), flush=True)


def format_terms(means):
    return (f"{means['loss']:.4f} (l1 {means['l1']:.4f}, ssim {means['ssim']:.4f}, "
            f"perceptual {means['perceptual']:.4f})")


def resume_state(args):
    """The resumable checkpoint to continue from, after checking it belongs to this training."""
    path = args.resume or ckpt.last_path(args.out)
    if not os.path.isfile(path):
        raise SystemExit(f"error: --resume: no checkpoint at {path}")
    try:
        state = ckpt.load_checkpoint(path)
    except ValueError as err:
        raise SystemExit(f"error: --resume: {err}") from err
    if "optimizer" not in state:
        raise SystemExit(f"error: --resume: {path} holds a model only; resume needs "
                         f"{ckpt.LAST} (model, optimizer, epoch and RNG state)")
    changed = {k: (state["settings"].get(k), v) for k, v in settings_of(args).items()
               if state["settings"].get(k) != v}
    if changed:
        listed = ", ".join(f"{k}: checkpoint {old!r}, now {new!r}" for k, (old, new) in changed.items())
        raise SystemExit(f"error: --resume: these settings differ from the checkpoint's, so the run "
                         f"would not continue the same training: {listed}")
    return path, state


def step_counter(stop_after):
    """Called after every optimizer step.  With stop_after (the hidden
    --stop-after-steps test flag) the process ends right there, with no
    clean-up, as a crash or a kill would end it."""
    steps = [0]

    def on_step():
        steps[0] += 1
        if stop_after is not None and steps[0] >= stop_after:
            sys.stdout.flush()
            os._exit(3)
    return on_step


def save_epoch(args, epoch, model, optimizer, rng, history):
    """Everything an epoch leaves behind: checkpoints, the JSON lines, the plot."""
    if epoch % args.save_every == 0 or epoch == args.epochs:
        ndl.save(ckpt.model_record(model, epoch), ckpt.epoch_path(args.out, epoch))
    ckpt.save_last(ckpt.last_path(args.out), model, optimizer, epoch, rng, history, settings_of(args))
    write_jsonl(history, os.path.join(args.out, "metrics.jsonl"))
    plot_losses(history, os.path.join(args.out, "loss_curve.png"))


def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    resumed = resume_state(args) if args.resume is not None else None
    os.makedirs(args.out, exist_ok=True)
    try:
        train, val = train_val_datasets(args.data, args.subset, args.val_subset, args.seed, device)
    except DataUnavailable as err:
        raise SystemExit(f"error: {err}") from err

    np.random.seed(args.seed)  # needle.init draws initial weights from numpy's global RNG
    model = ColorizationNet(batch_norm=args.batch_norm, device=device)
    optimizer = ndl.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = CombinedLoss(args.l1_weight, args.ssim_weight, args.perceptual_weight,
                           feature_net(args.perceptual_checkpoint, device))
    rng, first_epoch, history = np.random.default_rng(args.seed), 1, []
    banner(args, device, train, val, model, describe(args.data))
    if resumed:
        path, state = resumed
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng, first_epoch, history = ckpt.restore_rng(state["rng"]), state["epoch"] + 1, list(state["history"])
        print(f"Resuming from {path} after epoch {state['epoch']}", flush=True)

    on_step = step_counter(args.stop_after_steps)
    for epoch in range(first_epoch, args.epochs + 1):
        started = time.time()
        order = rng.permutation(len(train))
        with tqdm(total=len(train), desc=f"Epoch {epoch}/{args.epochs}", unit="img",
                  leave=False, dynamic_ncols=True) as bar:
            train_means = train_epoch(model, loss_fn, optimizer, train, order, args.batch_size,
                                      device, bar, on_step)
        seconds = time.time() - started
        val_means = validate(model, loss_fn, val, args.batch_size, device)
        history.append({"epoch": epoch, "train": train_means, "val": val_means,
                        "train_seconds": round(seconds, 3), "images_per_second": round(len(train) / seconds, 2)})
        print(f"Epoch {epoch}/{args.epochs}  train {format_terms(train_means)}  val {format_terms(val_means)}  "
              f"[{seconds:.1f} s, {len(train) / seconds:.1f} img/s]", flush=True)
        save_epoch(args, epoch, model, optimizer, rng, history)
    print(f"Done: {args.out}", flush=True)


if __name__ == "__main__":
    main()
