"""demo_colorization.ipynb runs headless, top to bottom, on a tiny checkpoint."""

import os

import pytest

from colorization_helpers import make_split_folder, save_tiny_checkpoint

nbformat = pytest.importorskip("nbformat", reason="nbformat is needed to read the notebook")
nbclient = pytest.importorskip("nbclient", reason="nbclient is needed to execute the notebook")
pytest.importorskip("ipykernel", reason="ipykernel is needed to run the notebook's Python kernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORIZATION_CHECKPOINT", save_tiny_checkpoint(tmp_path / "model.pkl"))
    monkeypatch.setenv("COLORIZATION_DATA", make_split_folder(tmp_path / "data", 1, 2))
    monkeypatch.setenv("COLORIZATION_DEVICE", "cpu")
    monkeypatch.setenv("COLORIZATION_LIMIT", "6")
    notebook = nbformat.read(os.path.join(ROOT, "demo_colorization.ipynb"), as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": ROOT}}).execute()
    printed = "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert "grayscale" in printed and "PSNR pooled" in printed
    images = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if "image/png" in out.get("data", {})]
    assert len(images) == 2  # the metric bars and the sample grid
