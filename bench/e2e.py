"""End to end: wall time and peak RSS of the whole pipeline, per stage (issue #8). Writes
bench/results/e2e.json.

    .venv/bin/python bench/e2e.py [--presets smoke cpu] [--keep runs/bench]

Each stage is the command a user runs (`python -m igpt_lib world build|sft|rm|ppo|eval`), in
its own process, so its peak RSS is its own (from wait4); `reproduce` runs the same stages in
one process. The model cache is a fresh, empty folder: the base models come from the kit
(data/base_models) as on a fresh clone. `--keep DIR` keeps each preset's run in DIR/<preset>
(bench/ppo_bench.py reads the cpu one).
"""
import argparse
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
from igpt_lib.config import get_preset  # noqa: E402

RESULTS = REPO / "bench" / "results" / "e2e.json"
GOALS_S = {"smoke": 180, "cpu": 900}   # issue #6: smoke ≤ 3 min; issue #8: cpu ≤ 15 min (issue #6: ≤ 20)


def stages(preset):
    ptx = get_preset(preset).ppo_ptx.ptx_coef
    return [("world", ["world", "build"]), ("sft", ["sft"]), ("rm", ["rm"]), ("ppo", ["ppo"]),
            ("ppo_ptx", ["ppo", "--ptx-coef", str(ptx), "--name", "ppo_ptx"]), ("ppo_beta0", ["ppo", "--beta0"]),
            ("eval", ["eval"])]


def run_stage(args, env):
    """(seconds, peak RSS in MiB) of one stage's process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "igpt_lib", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"bench/e2e.py: `python -m igpt_lib {' '.join(args)}` failed ({proc.returncode}):\n{err[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux: KiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["smoke", "cpu"])
    ap.add_argument("--keep", type=Path, help="keep each preset's run in KEEP/<preset>")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    result = {"machine": machine(),
              "how": "each stage its own `python -m igpt_lib` process; fresh model cache; shipped base models",
              "presets": {}}
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep / preset if args.keep else Path(tmp) / "run"
            if out.exists():
                shutil.rmtree(out)
            env = {**os.environ, "IGPT_CACHE": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1"}
            rows = {}
            for name, cmd in stages(preset):
                seconds, rss = run_stage([*cmd, "--preset", preset, "--out", str(out)], env)
                rows[name] = {"seconds": round(seconds, 1), "peak_rss_mib": round(rss)}
                print(f"{preset:6s} {name:8s} {seconds:7.1f} s  {rss:7.0f} MiB", flush=True)
        total = sum(r["seconds"] for r in rows.values())
        result["presets"][preset] = {"seconds": round(total, 1), "peak_rss_mib": max(r["peak_rss_mib"] for r in
                                                                                     rows.values()),
                                     "goal_s": GOALS_S.get(preset), "stages": rows}
        print(f"{preset:6s} {'total':8s} {total:7.1f} s (goal {GOALS_S.get(preset)} s)", flush=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
