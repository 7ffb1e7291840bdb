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
