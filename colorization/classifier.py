"""Train the CIFAR-10 classifier behind the perceptual loss: ``python -m colorization.classifier``.

A ResNet9-like CifarClassifier (colorization.features) trained in needle on
the training split with random crops and flips; its test accuracy is printed
every epoch and stored in the checkpoint.  Use the checkpoint with
``colorization.train --perceptual-checkpoint`` and
``colorization.evaluate --classifier``.
"""

import argparse
import os
import time

import numpy as np
from tqdm import tqdm

import needle as ndl

from .cli import add_device_argument, get_device
from .dataset import DEFAULT_DATA, DataUnavailable, open_split, subset_indices, to_chw_float
from .features import CLASSIFIER_KIND, CifarClassifier, predict_labels


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m colorization.classifier", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="a cifar-10-batches-py folder or an image folder "
                                                        "with train/ and test/ (default: %(default)s)")
    add_device_argument(p)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--widths", default="16,32,64,128", help="channels of the four stages")
    p.add_argument("--subset", type=int, default=None, help="train on a seeded random subset of N images")
    p.add_argument("--val-subset", type=int, default=None, help="test on a seeded random subset of N images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("checkpoints", "classifier.pkl"),
                   help="checkpoint path (needle safe format) (default: %(default)s)")
    return p.parse_args(argv)


def augment(images, rng):
    """Random 4-pixel shifts and horizontal flips of a batch of CHW float images."""
    crop = ndl.data.RandomCrop(padding=4, generator=rng)
    flip = ndl.data.RandomFlipHorizontal(generator=rng)
    return np.stack([flip(crop(img)) for img in images])


def accuracy(net, base, indices, device):
    net.eval()
    labels = predict_labels(net, to_chw_float(base.images[indices]), device)
    return float(np.mean(labels == base.labels[indices]))


def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    try:
        train, test = open_split(args.data, "train"), open_split(args.data, "test")
    except DataUnavailable as err:
        raise SystemExit(f"error: {err}") from err
    train_idx = subset_indices(len(train), args.subset, args.seed, stream=0)
    test_idx = subset_indices(len(test), args.val_subset, args.seed, stream=1)
    np.random.seed(args.seed)
    net = CifarClassifier(widths=[int(w) for w in args.widths.split(",")], device=device)
    optimizer = ndl.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    loss_fn = ndl.nn.SoftmaxLoss()
    rng = np.random.default_rng(args.seed)
    print(f"CIFAR-10 classifier {net.config['widths']} on {device.name}: "
          f"{len(train_idx)} training, {len(test_idx)} test images", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        net.train()
        started, seen, loss_sum, correct = time.time(), 0, 0.0, 0
        order = train_idx[rng.permutation(len(train_idx))]
        with tqdm(total=len(order), desc=f"Epoch {epoch}/{args.epochs}", unit="img", leave=False) as bar:
            for start in range(0, len(order), args.batch_size):
                idx = order[start:start + args.batch_size]
                x = ndl.Tensor(augment(to_chw_float(train.images[idx]), rng), device=device)
                optimizer.zero_grad()
                logits = net(x)
                loss = loss_fn(logits, train.labels[idx])
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(idx)
                correct += int(np.sum(logits.numpy().argmax(axis=1) == train.labels[idx]))
                seen += len(idx)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", refresh=False)
                bar.update(len(idx))
        test_acc = accuracy(net, test, test_idx, device)
        print(f"Epoch {epoch}/{args.epochs}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.2%}  "
              f"test acc {test_acc:.2%}  [{time.time() - started:.1f} s]", flush=True)
        ndl.save({"kind": CLASSIFIER_KIND, "model": net.state_dict(), "config": net.config,
                  "epoch": epoch, "test_accuracy": test_acc}, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
