"""Evaluate a colorization checkpoint: ``python -m colorization.evaluate --checkpoint C --data D``.

Every metric of DESIGN.md for the model and, beside it, for the grayscale
baseline (the true L with a = b = 0): a colorizer that does not beat grey has
learned nothing useful.  With --classifier, the CIFAR-10 classifier's accuracy
on the true, grey and colorized images (Zhang et al.'s "semantic
interpretability").  Writes a table to stdout, the same numbers as JSON, and a
PNG grid of samples (grey | colorized | truth).
"""

import argparse
import json
import os

import numpy as np
from PIL import Image

from .checkpoint import load_checkpoint
from .cli import add_device_argument, get_device
from .dataset import ColorizationDataset, DataUnavailable, describe, open_split, subset_indices
from .features import load_classifier, predict_labels
from .metrics import ColorizationMetrics, quantize
from .model import build_model
from .predict import predict_ab, to_rgb

ROWS = (  # (key, label, format)
    ("psnr_pooled", "PSNR pooled (dB)", "{:.2f}"),
    ("psnr_per_image", "PSNR per image (dB)", "{:.2f}"),
    ("ssim", "SSIM (Gaussian 11, 1.5)", "{:.4f}"),
    ("l1", "L1 (RGB, [0,1])", "{:.4f}"),
    ("ab_error", "mean ab error (Lab units)", "{:.2f}"),
    ("colourfulness", "colourfulness", "{:.2f}"),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m colorization.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a colorization checkpoint (colorization_epoch_N.pkl or "
                                                       "colorization_last.pkl)")
    p.add_argument("--data", required=True, help="a cifar-10-batches-py folder or an image folder")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--limit", type=int, default=None, help="evaluate a seeded random subset of N images")
    p.add_argument("--classifier", default=None, help="a CIFAR-10 classifier checkpoint "
                                                      "(python -m colorization.classifier)")
    p.add_argument("--samples", type=int, default=8, help="rows of the sample grid")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=None, help="folder for evaluation_<split>.json and samples_<split>.png "
                                               "(default: the checkpoint's folder)")
    add_device_argument(p)
    return p.parse_args(argv)


def evaluate(model, data, device, batch_size=64, classifier=None, n_samples=8):
    """Metrics of the model and of the grayscale baseline on a ColorizationDataset.

    Returns (results dict, samples) where samples holds (grey, colorized,
    truth) uint8 HWC triples of n_samples images spread evenly over the data
    (image folders are sorted by class, so the first few would all be alike).
    """
    model_metrics, grey_metrics = ColorizationMetrics(device), ColorizationMetrics(device)
    correct = {"truth": 0, "grey": 0, "colorized": 0}
    samples = []
    wanted = set(np.linspace(0, len(data) - 1, min(n_samples, len(data))).round().astype(int).tolist())
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        L = data.L[idx]
        truth = np.ascontiguousarray(data.images[idx].transpose(0, 3, 1, 2))
        colorized = quantize(to_rgb(L, predict_ab(model, L, device, batch_size), device))
        grey = quantize(to_rgb(L, np.zeros((len(L), 2) + L.shape[2:], np.float32), device))
        model_metrics.update(colorized, truth)
        grey_metrics.update(grey, truth)
        if classifier is not None:
            for name, images in (("truth", truth), ("grey", grey), ("colorized", colorized)):
                labels = predict_labels(classifier, images.astype(np.float32) / 255.0, device)
                correct[name] += int(np.sum(labels == data.labels[idx]))
        samples += [tuple(x.transpose(1, 2, 0) for x in triple)
                    for i, triple in zip(idx, zip(grey, colorized, truth)) if i in wanted]
    results = {"model": model_metrics.result(), "grayscale_baseline": grey_metrics.result()}
    if classifier is not None:
        results["classifier_accuracy"] = {k: v / len(data) for k, v in correct.items()}
    return results, samples


def sample_grid(samples, scale=4, gap=2):
    """One PNG-ready uint8 image: a row per sample, its images side by side, upscaled."""
    h, w, _ = samples[0][0].shape
    cols = len(samples[0])
    cell_h, cell_w = h * scale + gap, w * scale + gap
    grid = np.full((len(samples) * cell_h + gap, cols * cell_w + gap, 3), 255, np.uint8)
    for r, row in enumerate(samples):
        for c, img in enumerate(row):
            top, left = gap + r * cell_h, gap + c * cell_w
            grid[top:top + h * scale, left:left + w * scale] = img.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def format_table(results, title):
    m, g = results["model"], results["grayscale_baseline"]
    lines = [title, f"{'metric':<28}{'model':>12}{'grayscale':>12}", "-" * 52]
    for key, label, fmt in ROWS:
        lines.append(f"{label:<28}{fmt.format(m[key]):>12}{fmt.format(g[key]):>12}")
    lines += ["-" * 52,
              f"per-image PSNR leaves out {m['grey_images_left_out']} grey ground truths; "
              f"ground-truth colourfulness {m['colourfulness_truth']:.2f}"]
    if "classifier_accuracy" in results:
        acc = results["classifier_accuracy"]
        lines.append(f"classifier accuracy: truth {acc['truth']:.2%}, grey {acc['grey']:.2%}, "
                     f"colorized {acc['colorized']:.2%}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: cannot load --checkpoint: {err}") from err
    try:
        base = open_split(args.data, args.split, download=False)
    except DataUnavailable as err:
        raise SystemExit(f"error: {err}") from err
    data = ColorizationDataset(base, subset_indices(len(base), args.limit, seed=0), device)
    classifier = load_classifier(args.classifier, device) if args.classifier else None
    results, samples = evaluate(build_model(checkpoint, device), data, device, args.batch_size,
                                classifier, max(1, args.samples))

    dataset_name = describe(args.data)
    results.update({"dataset": dataset_name, "split": args.split, "images": len(data),
                    "checkpoint": os.path.abspath(args.checkpoint), "epoch": checkpoint.get("epoch")})
    title = (f"{dataset_name}, {args.split} split, {len(data)} images; "
             f"checkpoint {args.checkpoint} (epoch {checkpoint.get('epoch')})")
    print(format_table(results, title))

    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, f"evaluation_{args.split}.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=2)
    grid_path = os.path.join(out, f"samples_{args.split}.png")
    Image.fromarray(sample_grid(samples)).save(grid_path)
    print(f"wrote {json_path} and {grid_path} (columns: grey | colorized | truth)")


if __name__ == "__main__":
    main()
