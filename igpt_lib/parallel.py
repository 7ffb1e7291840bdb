"""`reproduce`'s PPO runs side by side, one process each (issue #8).

PPO, PPO-ptx, the β = 0 run and (with --full) the Figure 1 sizes and seeds read only OUT/sft
and OUT/rm, so they can run at the same time. The offline world's models are too small for a
second thread to help one run much: on 2 cores, the cpu preset's three runs took ~310 s side by
side, one thread each (README "Performance"), and 409 s one after another with two threads each
(`reproduce --jobs 1`, the same machine and day). On a GPU they run in turn (one device).

A worker's output goes to OUT/logs/<name>.log and is printed when its run ends; one progress
bar follows all runs (from their metrics.jsonl). The thread count changes the last bits of a
float sum, so a run's numbers depend on it: each PPO stage's `threads` and `jobs` are kept in
OUT/stages.json, and both come from the whole list of runs, so a resumed `reproduce` gives the
runs it finishes the same threads as the first call gave them.
"""
import os
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from .utils import peak_rss_mib, reset_peak_rss


def cpu_cores():
    """Cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs(n_runs):
    """One run per core on a CPU, at most `n_runs`; 1 where a GPU (CUDA, Apple's MPS) trains them."""
    import torch
    on_gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
    return 1 if on_gpu else max(1, min(cpu_cores(), n_runs))


def timed(run):
    """{"seconds", "peak_rss_mib"} of `run()` in this process."""
    start, _ = time.time(), reset_peak_rss()
    run()
    return {"seconds": round(time.time() - start, 1), "peak_rss_mib": peak_rss_mib()}


def run_ppo_stages(preset, out, runs, jobs, on_done, threads=None, progress=True):
    """Each (name, keywords of `run_ppo`) of `runs` that OUT/<name> does not hold finished,
    `jobs` at a time, resuming where a run left off; `on_done(name, timing)` after each. With
    jobs = 1 they run here, in turn; else in worker processes of `threads` torch threads each
    (default: the cores shared out among `jobs`)."""
    import torch
    from .ppo_trainer import run_ppo
    out, todo = Path(out), []
    for name, kwargs in runs:
        if (out / name / "summary.json").exists():
            print(f"reproduce: {name} already in {out} (summary.json); skipped")
        else:
            todo.append((name, kwargs))
    if not todo:
        return
    if jobs <= 1:
        for name, kwargs in todo:
            on_done(name, {**timed(lambda: run_ppo(preset, out, resume=True, **kwargs)),
                           "threads": torch.get_num_threads(), "jobs": 1})
        return
    if not (out / "rm" / "metrics.json").exists():   # else each worker would make steps 1-2 at once
        raise FileNotFoundError(f"{out / 'rm'}: no reward model; run `python -m igpt_lib rm` first")
    _side_by_side(preset, out, todo, jobs, threads or max(1, cpu_cores() // jobs), on_done, progress)


def _side_by_side(preset, out, runs, jobs, threads, on_done, progress):
    """`runs` in a pool of `jobs` spawned workers; their logs printed as each ends; failures raised at the end."""
    from tqdm.auto import tqdm
    print(f"reproduce: {', '.join(n for n, _ in runs)}: {jobs} at a time, {threads} thread(s) each; "
          f"their output in {out / 'logs'}", flush=True)
    logs = {name: out / "logs" / f"{name}.log" for name, _ in runs}
    seen = {name: log.stat().st_size if log.exists() else 0 for name, log in logs.items()}  # earlier attempts
    iterations = {name: (kw.get("config") or preset.ppo).iterations for name, kw in runs}
    one_each = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}   # a fresh process per run
    failed = []
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), **one_each) as pool, \
            tqdm(total=sum(iterations.values()), desc="ppo runs", unit="it", disable=not progress) as bar:
        futures = {pool.submit(_worker, preset, str(out), name, kwargs, threads): name for name, kwargs in runs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=2, return_when=FIRST_COMPLETED)
                bar.update(sum(_iterations_done(out / n, iterations[n]) for n in iterations) - bar.n)
                for future in done:
                    name = futures[future]
                    bar.write(_new_output(logs[name], seen[name]) or f"{name}: no output")
                    if future.exception() is not None:
                        failed.append((name, future.exception()))
                    else:
                        on_done(name, {**future.result(), "jobs": jobs})
        except BaseException:   # Ctrl-C, or SIGINT to this process alone: stop the workers now, not
            for process in list((getattr(pool, "_processes", None) or {}).values()):   # when their runs end
                process.terminate()   # checkpoints are written atomically: each run resumes
            pool.shutdown(cancel_futures=True)
            raise
    if failed:
        names = ", ".join(f"{n} (log: {logs[n]})" for n, _ in failed)
        hint = ("; a worker died (out of memory?): try `--jobs 1`" if any(isinstance(e, BrokenProcessPool)
                                                                         for _, e in failed) else "")
        raise RuntimeError(f"reproduce: PPO run(s) failed: {names}: {failed[0][1]!r}{hint}") from failed[0][1]


def _new_output(log, start):
    """What a run wrote to its log in this attempt (after byte `start`)."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace").rstrip()
    except OSError:
        return ""


def _iterations_done(run_dir, total):
    """Lines of a run's metrics.jsonl so far (one per iteration)."""
    try:
        with open(run_dir / "metrics.jsonl", "rb") as f:
            return min(total, sum(1 for _ in f))
    except OSError:
        return 0


def _worker(preset, out, name, kwargs, threads):
    """One PPO run in a worker process with `threads` torch threads; everything it prints (Python,
    C++, warnings, log handlers) goes to OUT/logs/<name>.log; it ends itself if the parent dies."""
    log = Path(out) / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    with open(log, "a", encoding="utf-8") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    _exit_with_parent()
    try:
        import torch
        from .utils import quiet_transformers
        quiet_transformers()
        from .ppo_trainer import run_ppo
        torch.set_num_threads(threads)
        timing = timed(lambda: run_ppo(preset, out, resume=True, progress=False, **kwargs))
        return {**timing, "threads": torch.get_num_threads()}
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        sys.stdout.flush(), sys.stderr.flush()


def _exit_with_parent():
    """A thread that ends this worker once its parent is gone (killed, out of memory, a kernel
    restart), so no orphan goes on writing a run that a new `reproduce` resumes."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()
