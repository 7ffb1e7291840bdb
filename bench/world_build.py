"""Wall time of `world build` with a cold model cache and the base models pretrained here
(`--pretrain`: the shipped ones in data/base_models are not used; the RM's public-NLP start, where
the preset has one, is trained too), per preset: the issue-2 goals
(smoke ≤ 60 s, cpu ≤ 10 min on 2 cores). Also compares the models it trained with the shipped
ones: byte-equal, or how far apart. Writes its presets' entries into bench/results/world_build.json.

    .venv/bin/python bench/world_build.py [--presets smoke cpu]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, write_result  # noqa: E402

GOALS_S = {"smoke": 60, "cpu": 600}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _final_loss(folder):
    return json.loads(next(folder.glob("*_log.json")).read_text())["final_loss"]


def _against_shipped(cache):
    """{model folder: {byte_equal, max_abs_diff (largest weight difference), loss_diff (final training
    losses)}} against data/base_models', for the models the kit ships. Trained on another machine the
    bits may differ (float rounding, docs/reliability.md); the sizes of the differences say how far."""
    from safetensors.torch import load_file
    shipped = Path(__file__).resolve().parents[1] / "data" / "base_models"
    out = {}
    for p in sorted(cache.iterdir()):
        if not (shipped / p.name).is_dir():
            continue
        new, old = load_file(p / "model.safetensors"), load_file(shipped / p.name / "model.safetensors")
        out[p.name] = {"byte_equal": _sha(p / "model.safetensors") == _sha(shipped / p.name / "model.safetensors"),
                       "max_abs_diff": max((new[k] - old[k]).abs().max().item() for k in old),
                       "loss_diff": abs(_final_loss(p) - _final_loss(shipped / p.name))}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["smoke", "cpu"])
    args = ap.parse_args()
    path = Path(__file__).parent / "results" / "world_build.json"
    results = json.loads(path.read_text()) if path.exists() else {"presets": {}}  # other presets' entries stay
    results["machine"] = machine()
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "IGPT_CACHE": str(Path(tmp) / "cache")}  # cold cache
            start = time.time()
            subprocess.run([sys.executable, "-m", "igpt_lib", "world", "build", "--preset", preset,
                            "--out", str(Path(tmp) / "out"), "--pretrain"], env=env, check=True,
                           stderr=subprocess.DEVNULL)
            wall = time.time() - start
            world = json.loads((Path(tmp) / "out" / "world.json").read_text())
            shipped = _against_shipped(Path(tmp) / "cache" / "models")
        results["presets"][preset] = {
            "wall_s": round(wall, 1), "goal_s": GOALS_S.get(preset), "timings": world["timings"],
            "labeler_agreement": world["labeler_agreement"], "param_ratio": world["param_ratio"],
            "base_gold_score": world["base_gold_score"],
            "base_prompted_gold_score": world["base_prompted_gold_score"],
            "against_shipped": shipped}
        print(f"{preset:6s} {wall:7.1f} s (goal {GOALS_S.get(preset)} s); against the shipped models: {shipped}")
    write_result(path, results)


if __name__ == "__main__":
    main()
