"""The Colab notebook runs top to bottom on CPU with the smoke preset, so it never rots."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # a kernel runs the notebook's smoke sweep


def test_colab_notebook_executes(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXWVAE_NOTEBOOK_PRESET", "smoke")
    monkeypatch.setenv("JAXWVAE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    nb = nbformat.read(REPO / "notebooks" / "colab_sweep.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "3 replicas x 20 steps" in text and "devices:" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the training plots and the samples
