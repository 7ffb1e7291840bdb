"""Every notebook executes top to bottom in the smoke preset (papermill, its own kernel)."""
import json

import papermill as pm
import pytest

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_a_kernelspec_and_a_parameters_cell():
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1 and "PRESET" in "".join(params[0]["source"]), path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke(path, tmp_path, cache_dir):
    pm.execute_notebook(str(path), str(tmp_path / path.name), cwd=str(path.parent),
                        parameters={"PRESET": "smoke", "OUT": str(tmp_path / "run")},
                        progress_bar=False, kernel_name="python3")
