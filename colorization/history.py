"""The training log: one JSON line per epoch, and a loss-curve plot of the same records.

Both are rewritten whole from the history kept in the resumable checkpoint,
so a resumed run's log holds exactly the epochs its weights went through.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")  # files only: training runs headless
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TERMS = ("loss", "l1", "ssim", "perceptual")


def write_jsonl(history, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for record in history:
            f.write(json.dumps(record) + "\n")
    os.replace(tmp, path)


def plot_losses(history, path):
    """Train and validation curves of the total and of each term, one panel each."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, len(TERMS), figsize=(4 * len(TERMS), 3.2))
    for ax, term in zip(axes, TERMS):
        for split, style in (("train", "-o"), ("val", "--s")):
            ax.plot(epochs, [r[split][term] for r in history], style, label=split, markersize=3)
        ax.set_title("total loss" if term == "loss" else f"{term} term (unweighted)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
