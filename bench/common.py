"""What every benchmark script records: the machine, and the JSON it writes to bench/results/."""
import json
import os
import platform


def machine():
    """The facts that make a timing comparable: cores, threads, platform, Python and torch."""
    import torch
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}


def write_result(path, result):
    """`result` as indented JSON at `path` (folders made), and the path printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print("->", path)


def run_label(run, repo):
    """A run folder as result files name it: relative to the repository when inside it (the same
    run reads the same however it was given), else as given."""
    from pathlib import Path
    resolved = Path(run).resolve()
    return str(resolved.relative_to(repo)) if resolved.is_relative_to(repo) else str(run)


def docs_or_main(main, table, results, marker, doc="docs/implementation_details.md"):
    """A result script's entry point: `--docs` rewrites the `marker` section of `doc` with
    `table(result file)`; anything else runs `main()` (which parses its own arguments)."""
    import sys
    from pathlib import Path
    if sys.argv[1:2] == ["--docs"]:
        from docs.update_numbers import replace
        replace(Path(__file__).resolve().parents[1] / doc, marker, table(json.loads(Path(results).read_text())))
    else:
        main()
