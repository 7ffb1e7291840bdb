"""Wall time of `world build` with a cold model cache and the base models pretrained here
(`--pretrain`: the shipped ones in data/base_models are not used), per preset: the issue-2 goals
(smoke ≤ 60 s, cpu ≤ 10 min on 2 cores). Also checks that the models it pretrained are
byte-equal to the shipped ones. Writes bench/results/world_build.json.

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


def _matches_shipped(cache):
    """{model folder: weights byte-equal to data/base_models'} for the models the kit ships."""
    shipped = Path(__file__).resolve().parents[1] / "data" / "base_models"
    return {p.name: _sha(p / "model.safetensors") == _sha(shipped / p.name / "model.safetensors")
            for p in sorted(cache.iterdir()) if (shipped / p.name).is_dir()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["smoke", "cpu"])
    args = ap.parse_args()
    results = {"machine": machine(), "presets": {}}
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "IGPT_CACHE": str(Path(tmp) / "cache")}  # cold cache
            start = time.time()
            subprocess.run([sys.executable, "-m", "igpt_lib", "world", "build", "--preset", preset,
                            "--out", str(Path(tmp) / "out"), "--pretrain"], env=env, check=True,
                           stderr=subprocess.DEVNULL)
            wall = time.time() - start
            world = json.loads((Path(tmp) / "out" / "world.json").read_text())
            shipped = _matches_shipped(Path(tmp) / "cache" / "models")
        results["presets"][preset] = {
            "wall_s": round(wall, 1), "goal_s": GOALS_S.get(preset), "timings": world["timings"],
            "labeler_agreement": world["labeler_agreement"], "param_ratio": world["param_ratio"],
            "base_gold_score": world["base_gold_score"],
            "base_prompted_gold_score": world["base_prompted_gold_score"],
            "equal_to_shipped": shipped}
        print(f"{preset:6s} {wall:7.1f} s (goal {GOALS_S.get(preset)} s); equal to the shipped models: {shipped}")
    write_result(Path(__file__).parent / "results" / "world_build.json", results)


if __name__ == "__main__":
    main()
