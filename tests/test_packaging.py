"""The set-up files agree with each other and with the house rules."""
import re

from conftest import REPO


def _reqs(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*([=<>!~].*)?$", line)
        if m and m.group(1) not in ("python", "pip", "name", "channels", "dependencies", "conda-forge"):
            out[m.group(1).lower()] = (m.group(2) or "").strip()
    return out


def test_requirements_and_environment_list_the_same_stack():
    req = _reqs((REPO / "requirements.txt").read_text().splitlines())
    env_lines = (REPO / "environment.yml").read_text().split("- pip:")[1].splitlines()
    env = _reqs(env_lines)
    assert env.pop("torch") == "==2.13.0"
    req.pop("torch")
    assert req == env
    for pkg in ("transformers", "datasets", "trl", "matplotlib", "ipywidgets", "jupyterlab",
                "bitsandbytes", "peft", "accelerate"):
        assert req[pkg].startswith("=="), pkg  # pinned: updates are what break notebooks


def test_cpu_constraints_pin_torch_and_ci_calls_make_test():
    assert "torch==2.13.0" in (REPO / "constraints-cpu.txt").read_text()
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_no_remote_code_and_no_unsafe_loading_in_the_library():
    for path in (REPO / "igpt_lib").rglob("*.py"):
        text = path.read_text()
        assert "trust_remote_code=True" not in text, path
        assert "pickle" not in text, path
        assert not re.search(r"torch\.load\((?![^)]*weights_only=True)", text), path
