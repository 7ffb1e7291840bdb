import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A fresh model cache per test session, so tests never depend on a warm machine."""
    path = tmp_path_factory.mktemp("igpt_cache")
    old = os.environ.get("IGPT_CACHE")
    os.environ["IGPT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("IGPT_CACHE", None)
    else:
        os.environ["IGPT_CACHE"] = old


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory, cache_dir):
    """The smoke world, built once per session (about 10 s)."""
    from igpt_lib.config import get_preset
    from igpt_lib.world.build import build_world
    out = tmp_path_factory.mktemp("smoke_run")
    report = build_world(get_preset("smoke"), out, log=lambda *_: None)
    return out, report


@pytest.fixture(scope="session")
def smoke_rm(smoke_world, tmp_path_factory):
    """The smoke world with steps 1-2 done (SFT models and the RM): step 3's inputs."""
    import shutil
    from igpt_lib.cli import main
    out = tmp_path_factory.mktemp("smoke_rm") / "run"
    shutil.copytree(smoke_world[0], out)
    assert main(["rm", "--preset", "smoke", "--out", str(out)]) == 0
    return out
