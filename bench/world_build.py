"""Wall time of `world build` with a cold model cache, per preset: the issue-2 goals
(smoke ≤ 60 s, cpu ≤ 10 min on 2 cores). Writes bench/results/world_build.json.

    .venv/bin/python bench/world_build.py [--presets smoke cpu]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS_S = {"smoke": 60, "cpu": 600}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["smoke", "cpu"])
    args = ap.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()}, "presets": {}}
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "IGPT_CACHE": str(Path(tmp) / "cache")}  # cold cache
            start = time.time()
            subprocess.run([sys.executable, "-m", "igpt_lib", "world", "build", "--preset", preset,
                            "--out", str(Path(tmp) / "out")], env=env, check=True,
                           stderr=subprocess.DEVNULL)
            wall = time.time() - start
            world = json.loads((Path(tmp) / "out" / "world.json").read_text())
        results["presets"][preset] = {
            "wall_s": round(wall, 1), "goal_s": GOALS_S.get(preset), "timings": world["timings"],
            "labeler_agreement": world["labeler_agreement"], "param_ratio": world["param_ratio"],
            "base_gold_score": world["base_gold_score"],
            "base_prompted_gold_score": world["base_prompted_gold_score"]}
        print(f"{preset:6s} {wall:7.1f} s (goal {GOALS_S.get(preset)} s)")
    out = Path(__file__).parent / "results" / "world_build.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("->", out)


if __name__ == "__main__":
    main()
