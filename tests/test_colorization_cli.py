"""evaluate and colorize on a tiny checkpoint: tables, files, sizes, and unreadable inputs."""

import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image
from skimage import color

import needle as ndl
from colorization import classifier, colorize, evaluate
from colorization.checkpoint import load_model
from colorization.dataset import ColorizationDataset, open_split
from colorization.metrics import quantize
from colorization_helpers import make_split_folder, save_tiny_checkpoint, save_tiny_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = make_split_folder(root / "cifar10-jpeg", train_per_class=2, test_per_class=4)
    return {"root": root, "data": data, "checkpoint": save_tiny_checkpoint(root / "model.pkl"),
            "classifier": save_tiny_classifier(root / "classifier.pkl")}


def test_evaluate_table_json_and_grid(tiny, capsys):
    out = str(tiny["root"] / "eval")
    evaluate.main(["--checkpoint", tiny["checkpoint"], "--data", tiny["data"], "--device", "cpu",
                   "--out", out, "--samples", "3", "--classifier", tiny["classifier"]])
    table = capsys.readouterr().out
    assert "CIFAR-10 (JPEG re-encoding), test split, 12 images" in table
    assert "grayscale" in table and "PSNR pooled" in table and "classifier accuracy" in table
    results = json.load(open(os.path.join(out, "evaluation_test.json")))
    assert results["dataset"] == "CIFAR-10 (JPEG re-encoding)" and results["images"] == 12
    for side in ("model", "grayscale_baseline"):
        assert {"psnr_pooled", "psnr_per_image", "grey_images_left_out", "ssim", "l1", "ab_error",
                "colourfulness", "colourfulness_truth"} <= set(results[side])
    assert results["model"]["grey_images_left_out"] == 3  # image 0 of each class is grey
    assert set(results["classifier_accuracy"]) == {"truth", "grey", "colorized"}
    grid = Image.open(os.path.join(out, "samples_test.png"))
    assert grid.size == (3 * (16 * 4 + 2) + 2, 3 * (16 * 4 + 2) + 2)


def test_grayscale_baseline_is_true_L_with_zero_ab(tiny):
    """The baseline row equals scikit-image's own grey reconstruction, quantized."""
    data = ColorizationDataset(open_split(tiny["data"], "test"), device=ndl.cpu())
    results, _ = evaluate.evaluate(load_model(tiny["checkpoint"], ndl.cpu()), data, ndl.cpu())
    lab = color.rgb2lab(data.images / 255.0)
    lab[..., 1:] = 0
    grey = quantize(color.lab2rgb(lab)).astype(np.float64) / 255.0
    mse = np.mean((grey - data.images / 255.0) ** 2)
    assert results["grayscale_baseline"]["psnr_pooled"] == pytest.approx(10 * np.log10(1 / mse), abs=0.02)


def test_evaluate_refuses_foreign_checkpoints(tiny, tmp_path):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps({"model": 1}))
    with pytest.raises(SystemExit, match="cannot load --checkpoint.*not a needle file"):
        evaluate.main(["--checkpoint", str(bad), "--data", tiny["data"], "--device", "cpu"])
    with pytest.raises(SystemExit, match="cannot load --checkpoint.*not a colorization checkpoint"):
        evaluate.main(["--checkpoint", tiny["classifier"], "--data", tiny["data"], "--device", "cpu"])


def test_colorize_any_size_keeps_L_and_reports_unreadable_files(tiny, tmp_path, capsys):
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    odd = (rng.random((21, 37, 3)) * 255).astype(np.uint8)
    Image.fromarray(odd).save(inputs / "odd.png")
    Image.fromarray(odd[:, :, 0]).save(inputs / "nested" / "grey.jpg")
    (inputs / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        colorize.main([str(inputs), str(tmp_path / "missing.jpg"), "--checkpoint", tiny["checkpoint"],
                       "--out", str(out), "--device", "cpu"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "broken.png" in err and "missing.jpg" in err and "2 of 4" in err

    result = np.asarray(Image.open(out / "odd_colorized.png"))
    assert result.shape == odd.shape
    L_in = color.rgb2lab(odd / 255.0)[..., 0]
    L_out = color.rgb2lab(result / 255.0)[..., 0]
    assert np.mean(np.abs(L_in - L_out)) < 0.5  # the input's own L, up to 8-bit rounding
    assert Image.open(out / "grey_colorized.png").size == (37, 21)


def test_classifier_command_trains_and_saves(tiny, capsys):
    out = str(tiny["root"] / "trained_classifier.pkl")
    classifier.main(["--data", tiny["data"], "--device", "cpu", "--epochs", "1", "--batch-size", "4",
                     "--widths", "4,4,8,8", "--out", out])
    assert "test acc" in capsys.readouterr().out
    saved = ndl.load(out)
    assert saved["config"]["widths"] == [4, 4, 8, 8] and 0.0 <= saved["test_accuracy"] <= 1.0


def test_colorize_predicts_large_images_at_reduced_size(tiny):
    rgb = (np.random.default_rng(1).random((24, 40, 3)) * 255).astype(np.uint8)
    model = load_model(tiny["checkpoint"], ndl.cpu())
    full = colorize.colorize(model, rgb, ndl.cpu(), max_side=0)
    reduced = colorize.colorize(model, rgb, ndl.cpu(), max_side=16)
    assert full.shape == reduced.shape == rgb.shape
    L = [color.rgb2lab(x / 255.0)[..., 0] for x in (rgb, reduced)]
    assert np.mean(np.abs(L[0] - L[1])) < 0.5  # full-resolution L either way
