"""`reproduce`'s PPO runs side by side, one process each (issue #8).

PPO, PPO-ptx, the β = 0 run and (with --full) the Figure 1 sizes and seeds read only OUT/sft
and OUT/rm, so they can run at the same time. The offline world's models are too small for two
threads to help one process much: on 2 cores, two runs of one thread each finish sooner than
the same runs one after another with two threads (bench/results/e2e.json). On a GPU they run in
turn (one device).

A worker's output goes to OUT/logs/<name>.log and is printed when its run ends; one progress
bar follows all runs (from their metrics.jsonl). The thread count changes the last bits of a
float sum, so a run's numbers depend on it: each stage's `threads` is kept in OUT/stages.json.
"""
import contextlib
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from .utils import peak_rss_mib, reset_peak_rss


def cpu_cores():
    """Cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs(n_runs):
    """One run per core on a CPU, at most `n_runs`; 1 where a GPU trains them (one device)."""
    import torch
    return 1 if torch.cuda.is_available() else max(1, min(cpu_cores(), n_runs))


def timed(run):
    """{"seconds", "peak_rss_mib"} of `run()` in this process."""
    start, _ = time.time(), reset_peak_rss()
    run()
    return {"seconds": round(time.time() - start, 1), "peak_rss_mib": peak_rss_mib()}


def run_ppo_stages(preset, out, runs, jobs, on_done, threads=None, progress=True):
    """Each (name, keywords of `run_ppo`) of `runs`, `jobs` at a time, resuming where a run left
    off; `on_done(name, timing)` after each. With jobs = 1 they run here, in turn, as they always
    did; else in `jobs` worker processes of `threads` torch threads each (default: the cores shared out)."""
    from .ppo_trainer import run_ppo
    out = Path(out)
    if jobs <= 1:
        import torch
        for name, kwargs in runs:
            on_done(name, {**timed(lambda: run_ppo(preset, out, resume=True, **kwargs)),
                           "threads": torch.get_num_threads(), "jobs": 1})
        return
    from tqdm.auto import tqdm
    threads = threads or max(1, cpu_cores() // jobs)
    print(f"reproduce: {', '.join(n for n, _ in runs)}: {jobs} at a time, {threads} thread(s) each; "
          f"their output in {out / 'logs'}", flush=True)
    iterations = {name: (kw.get("config") or preset.ppo).iterations for name, kw in runs}
    failed = []
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool, \
            tqdm(total=sum(iterations.values()), desc="ppo runs", unit="it", disable=not progress) as bar:
        futures = {pool.submit(_worker, preset, str(out), name, kwargs, threads): name for name, kwargs in runs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=2, return_when=FIRST_COMPLETED)
                bar.update(sum(_iterations_done(out / n, iterations[n]) for n in iterations) - bar.n)
                for future in done:
                    name = futures[future]
                    log = out / "logs" / f"{name}.log"
                    bar.write(log.read_text(encoding="utf-8").rstrip() if log.exists() else f"{name}: no log")
                    if future.exception() is not None:
                        failed.append((name, future.exception()))
                    else:
                        on_done(name, {**future.result(), "jobs": jobs})
        except BaseException:
            pool.shutdown(cancel_futures=True)   # finished runs are kept; `reproduce` resumes the others
            raise
    if failed:
        names = ", ".join(f"{n} (log: {out / 'logs' / f'{n}.log'})" for n, _ in failed)
        raise RuntimeError(f"reproduce: PPO run(s) failed: {names}: {failed[0][1]!r}") from failed[0][1]


def _iterations_done(run_dir, total):
    """Lines of a run's metrics.jsonl so far (one per iteration)."""
    try:
        with open(run_dir / "metrics.jsonl", "rb") as f:
            return min(total, sum(1 for _ in f))
    except OSError:
        return 0


def _worker(preset, out, name, kwargs, threads):
    """One PPO run in a fresh process with `threads` torch threads, its output to OUT/logs/<name>.log."""
    import torch
    from .ppo_trainer import run_ppo
    from .utils import quiet_transformers
    torch.set_num_threads(threads)
    quiet_transformers()
    log = Path(out) / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8", buffering=1) as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        try:
            timing = timed(lambda: run_ppo(preset, out, resume=True, progress=False, **kwargs))
        except BaseException:
            traceback.print_exc()
            raise
    return {**timing, "threads": threads}
