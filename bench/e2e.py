"""End to end: wall time and peak RSS of `reproduce`, and of each of its stages (issue #8).
Writes bench/results/e2e.json.

    .venv/bin/python bench/e2e.py [--presets smoke cpu] [--keep runs/bench]

Each preset runs the command a user runs, `python -m igpt_lib reproduce --preset P --out DIR`
(its PPO runs side by side in worker processes, igpt_lib/parallel.py): its wall time and peak
RSS (of the largest process) come from wait4, each stage's from the OUT/stages.json that
reproduce writes (peak RSS per stage via /proc/self/clear_refs in the process that ran it). The model
cache is a fresh, empty folder: the base models come from the kit (data/base_models) as on a
fresh clone. `--keep DIR` keeps each preset's run in DIR/<preset> (bench/ppo_bench.py reads the
cpu one).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results" / "e2e.json"
GOALS_S = {"smoke": 180, "cpu": 900}   # issue #6: smoke ≤ 3 min; issue #8: cpu ≤ 15 min (issue #6: ≤ 20)


def run_reproduce(preset, out, env):
    """(seconds, peak RSS in MiB) of one `reproduce` process."""
    args = [sys.executable, "-m", "igpt_lib", "reproduce", "--preset", preset, "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"bench/e2e.py: `{' '.join(args[1:])}` failed ({os.waitstatus_to_exitcode(status)}):\n{err[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux: KiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["smoke", "cpu"])
    ap.add_argument("--keep", type=Path, help="keep each preset's run in KEEP/<preset>")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    result = {"machine": machine(),
              "how": "`python -m igpt_lib reproduce` (PPO runs side by side); stages from its OUT/stages.json; "
                     "fresh model cache; shipped base models",
              "presets": {}}
    if args.out.exists():  # presets not measured this time keep their last measurement
        result["presets"] = {k: v for k, v in json.loads(args.out.read_text())["presets"].items()
                             if k not in args.presets}
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep / preset if args.keep else Path(tmp) / "run"
            if out.exists():
                shutil.rmtree(out)
            env = {**os.environ, "IGPT_CACHE": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1"}
            seconds, rss = run_reproduce(preset, out, env)
            stages = json.loads((out / "stages.json").read_text())
        for name, row in stages.items():
            print(f"{preset:6s} {name:9s} {row['seconds']:7.1f} s  {row['peak_rss_mib']:7.0f} MiB", flush=True)
        result["presets"][preset] = {"seconds": round(seconds, 1), "peak_rss_mib": round(rss),
                                     "goal_s": GOALS_S.get(preset), "stages": stages}
        print(f"{preset:6s} {'total':9s} {seconds:7.1f} s (goal {GOALS_S.get(preset)} s)", flush=True)
    rank = {name: i for i, name in enumerate(GOALS_S)}   # smoke before cpu, whichever ran last
    result["presets"] = dict(sorted(result["presets"].items(), key=lambda kv: rank.get(kv[0], len(rank))))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
