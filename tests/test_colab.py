"""Colab helpers: the preset a card can hold, where runs go, and the pinned install."""
import re
import tomllib

from igpt_lib import colab
from igpt_lib.memory import plan

from conftest import REPO


def test_pick_preset_by_memory_and_the_plan_agrees():
    assert colab.pick_preset(0) == "cpu"
    assert colab.pick_preset(15.0) == "colab-t4"       # a T4 shows 15 GiB
    assert colab.pick_preset(39.4) == "a100"
    assert plan("colab-t4").total_gib <= 15.0 and plan("a100").total_gib <= 39.4


def test_runs_go_to_drive_when_it_is_mounted(tmp_path):
    assert str(colab.run_folder("colab-t4", drive=tmp_path / "absent")) == "runs/colab-t4"
    assert colab.run_folder("colab-t4", drive=tmp_path) == tmp_path / "igpt_runs" / "colab-t4"


def test_no_gpu_here_means_fp32_and_the_cpu_preset():
    assert colab.precision() == "fp32" and colab.gpu_gib() == 0.0


def test_colab_extra_pins_the_same_versions_as_requirements():
    """The Colab install (`pip install "igpt-kit[colab] @ git+<Repository URL>"`) pins what we test."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(re.match(r"([\w-]+)==(\S+)", line).groups()
                for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line)
    extra = dict(p.split("==") for p in project["optional-dependencies"]["colab"])
    assert extra and all(pins[name] == version for name, version in extra.items())
    assert project["urls"]["Repository"].startswith("https://github.com/")


NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


def test_every_notebook_starts_with_the_colab_setup_cell_from_one_source():
    """First code cell = colab.setup_cell(pyproject's Repository URL), before the parameters."""
    import json
    url = colab.repository_url()
    assert url == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert len(NOTEBOOKS) == 7
    for path in NOTEBOOKS:
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(code[0]["source"]) == colab.setup_cell(url), path.name
        assert code[0]["metadata"]["tags"] == ["colab-setup"] and "parameters" in code[1]["metadata"]["tags"]


def test_readme_has_an_open_in_colab_badge_per_notebook():
    readme = (REPO / "README.md").read_text()
    for path in NOTEBOOKS:
        assert colab.badge(colab.repository_url(), path.name) in readme, path.name


def test_setup_cell_on_colab_clones_installs_pinned_and_keeps_runs_on_drive(monkeypatch, capsys):
    """The cell run as on Colab (a stand-in google.colab module, Drive mounted, kit not yet
    cloned): it clones the repository URL, installs the `colab` extra (pinned), links runs/ to
    Drive and moves into notebooks/; nothing is executed for real."""
    import os
    import subprocess
    import sys
    import types
    calls, kit = [], "/content/instructgpt-kit"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(("run", cmd)))
    monkeypatch.setattr(os.path, "isdir", lambda p: p == "/content/drive/MyDrive")
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    monkeypatch.setattr(os, "makedirs", lambda p, exist_ok: calls.append(("makedirs", p)))
    monkeypatch.setattr(os, "symlink", lambda src, dst: calls.append(("symlink", src, dst)))
    monkeypatch.setattr(os, "chdir", lambda p: calls.append(("chdir", p)))
    exec(colab.setup_cell(colab.repository_url()), {})
    assert calls[0] == ("run", ["git", "clone", "-q", "--depth", "1", colab.repository_url(), kit])
    assert calls[1] == ("run", [sys.executable, "-m", "pip", "install", "-q", "-e", f"{kit}[colab]"])
    assert ("symlink", "/content/drive/MyDrive/igpt_runs", f"{kit}/runs") in calls
    assert calls[-1] == ("chdir", f"{kit}/notebooks") and sys.path[0] == kit
    assert "--preset cpu" in capsys.readouterr().out          # no GPU here


def test_setup_cell_does_nothing_elsewhere(monkeypatch):
    import subprocess
    import sys
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    exec(colab.setup_cell(colab.repository_url()), {})
