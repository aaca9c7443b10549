"""Training: the dataset wrapper, the command line, its outputs, and exact kill-and-resume."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from skimage import color

import needle as ndl
from colorization import train
from colorization.checkpoint import epoch_path, last_path, load_checkpoint
from colorization.dataset import ColorizationDataset, describe, subset_indices, train_val_datasets
from colorization_helpers import make_cifar_batches, make_image_folder, make_split_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A tiny recipe: 8 images of 16x16 in batches of 4 -> 2 steps an epoch, 2 epochs.
TINY = ["--device", "cpu", "--subset", "8", "--val-subset", "4", "--batch-size", "4", "--epochs", "2",
        "--save-every", "2", "--seed", "5"]


@pytest.fixture(scope="module")
def split_data(tmp_path_factory):
    return make_split_folder(tmp_path_factory.mktemp("data") / "images", train_per_class=6, test_per_class=3)


def run_train(args, check=True):
    """python -m colorization.train in a fresh process (as a user, or a crash, would run it)."""
    proc = subprocess.run([sys.executable, "-m", "colorization.train", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"train exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


# ------------------------------------------------------------ dataset


def test_dataset_yields_scaled_lab_and_rgb(tmp_path):
    base = ndl.data.ImageFolderDataset(make_image_folder(tmp_path / "imgs", per_class=3), cache=False)
    data = ColorizationDataset(base, device=ndl.cpu())
    L, ab, rgb = data[4]
    assert L.shape == (1, 16, 16) and ab.shape == (2, 16, 16) and rgb.shape == (3, 16, 16)
    assert L.dtype == ab.dtype == rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb, base.images[4].transpose(2, 0, 1) / np.float32(255))
    lab = color.rgb2lab(base.images[4] / 255.0).transpose(2, 0, 1)
    np.testing.assert_allclose(L[0] * 100, lab[0], atol=1e-3)
    np.testing.assert_allclose(ab * 128, lab[1:], atol=1e-3)
    assert data.L.shape == (9, 1, 16, 16) and data.ab.shape == (9, 2, 16, 16)
    assert np.abs(data.ab[0]).max() < 1e-3  # image 0 of each class is grey: a = b = 0


def test_subsets_are_seeded_and_splits_disjoint(tmp_path, split_data):
    np.testing.assert_array_equal(subset_indices(100, 10, 3), subset_indices(100, 10, 3))
    assert not np.array_equal(subset_indices(100, 10, 3), subset_indices(100, 10, 4))
    assert list(subset_indices(5, None, 0)) == list(range(5))
    flat = make_image_folder(tmp_path / "flat", per_class=10)
    tr, va = train_val_datasets(flat, device=ndl.cpu())
    assert len(tr) == 27 and len(va) == 3
    assert not {im.tobytes() for im in tr.images} & {im.tobytes() for im in va.images}
    tr, va = train_val_datasets(split_data, subset=5, val_subset=4, device=ndl.cpu())
    assert len(tr) == 5 and len(va) == 4


def test_cifar_batches_folder_or_its_parent(tmp_path):
    folder = make_cifar_batches(tmp_path)
    for data in (folder, str(tmp_path)):
        tr, va = train_val_datasets(data, device=ndl.cpu())
        assert (len(tr), len(va)) == (10, 2) and tr.L.shape == (10, 1, 32, 32)
    assert describe(folder) == "CIFAR-10"


# ------------------------------------------------------------ command line


def test_help_names_the_flags_and_the_safe_format(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--data", "--device", "--epochs", "--batch-size", "--lr", "--l1-weight", "--ssim-weight",
                 "--perceptual-weight", "--subset", "--val-subset", "--seed", "--out", "--save-every",
                 "--resume", "--perceptual-checkpoint"):
        assert flag in text
    assert "safe-format" in text and "stop-after-steps" not in text
    defaults = train.parse_args([])
    assert (defaults.epochs, defaults.batch_size, defaults.lr, defaults.save_every) == (20, 64, 1e-3, 5)
    assert (defaults.l1_weight, defaults.ssim_weight, defaults.perceptual_weight) == (1.0, 0.1, 0.05)


def test_missing_cifar_fails_clearly_offline(tmp_path, monkeypatch, capsys):
    # A proxy on a closed port: the download attempt fails at once, network or not.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(SystemExit) as err:
        train.main(["--data", str(tmp_path / "data" / "cifar-10-batches-py"), "--device", "cpu",
                    "--out", str(tmp_path / "out")])
    message = str(err.value)
    assert "no CIFAR-10 data" in message and "image folder" in message


def test_kill_and_resume_ends_with_the_same_weights(tmp_path, split_data, capsys):
    full, crashed = str(tmp_path / "full"), str(tmp_path / "crashed")
    train.main(["--data", split_data, "--out", full, *TINY])
    out = capsys.readouterr()
    assert "Image Colorization Training" in out.out and "Training samples: 8" in out.out
    assert "img/s" in out.err  # the progress bar

    # Dies after the 3rd step: epoch 1 (2 steps) is checkpointed, epoch 2 is half done.
    died = run_train(["--data", split_data, "--out", crashed, *TINY, "--stop-after-steps", "3"], check=False)
    assert died.returncode == 3
    assert load_checkpoint(last_path(crashed))["epoch"] == 1
    resumed = run_train(["--data", split_data, "--out", crashed, *TINY, "--resume"])
    assert "Resuming from" in resumed.stdout

    a, b = load_checkpoint(last_path(full)), load_checkpoint(last_path(crashed))
    assert a["epoch"] == b["epoch"] == 2
    for name, value in a["model"].items():
        np.testing.assert_array_equal(b["model"][name], value, err_msg=name)
    for i, state in a["optimizer"]["state"].items():
        np.testing.assert_array_equal(b["optimizer"]["state"][i]["exp_avg_sq"], state["exp_avg_sq"])
    assert a["rng"] == b["rng"]
    assert [r["train"] for r in a["history"]] == [r["train"] for r in b["history"]]

    # The outputs of a run: per-epoch JSON lines, the plot, epoch checkpoints every 2.
    lines = [json.loads(line) for line in open(os.path.join(crashed, "metrics.jsonl"))]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert set(lines[0]["val"]) == {"loss", "l1", "ssim", "perceptual"}
    assert os.path.getsize(os.path.join(full, "loss_curve.png")) > 1000
    assert os.path.isfile(epoch_path(full, 2)) and not os.path.exists(epoch_path(full, 1))
    assert load_checkpoint(epoch_path(full, 2))["model"].keys() == a["model"].keys()


def test_resume_refuses_changed_settings(tmp_path, split_data, capsys):
    out = str(tmp_path / "run")
    train.main(["--data", split_data, "--out", out, *TINY[:-2], "--epochs", "1"])
    with pytest.raises(SystemExit, match="lr: checkpoint 0.001, now 0.01"):
        train.main(["--data", split_data, "--out", out, *TINY[:-2], "--epochs", "2", "--lr", "0.01", "--resume"])
    with pytest.raises(SystemExit, match="no checkpoint"):
        train.main(["--data", split_data, "--out", str(tmp_path / "none"), "--resume"])
