"""Every notebook runs from top to bottom, as committed (without outputs)."""

from pathlib import Path

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_is_committed_without_outputs(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    resources = {"metadata": {"path": str(tmp_path)}}  # the notebook's working folder
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources=resources
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    assert all(cell.outputs for cell in code if "print(" in cell.source)
    # a notebook writes its files to a scratch folder: nothing beside it, git status clean
    assert not sorted(tmp_path.iterdir()), sorted(tmp_path.iterdir())
