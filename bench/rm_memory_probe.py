"""Where the reward model's training memory goes on a GPU (issue 7): `python bench/rm_memory_probe.py`.

`bench/hub_memory.py` measured the RM phase above `memory.plan`'s estimate. This runs
`reward.train_reward_model` for two steps on the preset's RM (random weights, its real
architecture), batch and length, in variants that each remove one suspect — gradient
checkpointing, autocast, AdamW's state — and prints each peak (`torch.cuda.max_memory_allocated`
from the moment the float32 model is on the GPU). Writes bench/results/rm_memory_probe.json;
`--docs` only rewrites its table in docs/memory.md from that file.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("default", "no_checkpointing", "no_autocast", "sgd", "short_rows")

CHILD = r'''
import json, sys, torch
sys.path.insert(0, sys.argv[3])
from dataclasses import replace
from igpt_lib import reward
from igpt_lib.config import get_preset
from transformers import AutoTokenizer
variant, folder = sys.argv[1], sys.argv[2]
cfg = get_preset(sys.argv[4]).rm
tok = AutoTokenizer.from_pretrained(folder)
cuda = torch.cuda.is_available()  # on a CPU the probe only checks that it runs
model = reward.load_reward_model(folder).to("cuda" if cuda else "cpu")
model.config.pad_token_id = tok.pad_token_id
if variant == "no_checkpointing":
    cfg = replace(cfg, gradient_checkpointing=False)
if variant == "no_autocast":
    cfg = replace(cfg, mixed_precision=False)
if variant == "sgd":
    torch.optim.AdamW = lambda params, lr, **kw: torch.optim.SGD(params, lr=lr)
words = "the a model reward policy answer question river stone seven blue".split()
n = 60 if variant == "short_rows" else 2000  # short_rows: ~60 tokens, the rest is padding-free
rows = [{"prompt": " ".join(words[(i + j) % 11] for j in range(n // 4)),
         "responses": [" ".join(words[(i * k + j) % 11] for j in range(n)) for k in range(9)],
         "ranks": list(range(9))} for i in range(2 * cfg.batch_prompts)]
if cuda:
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
base = torch.cuda.memory_allocated() if cuda else 0
reward.train_reward_model(model, tok, rows, replace(cfg, epochs=1), progress=False)
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"variant": variant, "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                  "weights_gib": base / 2**30, "params": params, "rows": 9 * cfg.batch_prompts,
                  "max_length": cfg.max_length}))
'''


def main(preset="colab-t4"):
    import torch
    sys.path.insert(0, str(ROOT))
    from bench.hub_memory import save_random, tokenizer
    from igpt_lib.config import get_preset
    from igpt_lib.memory import model_config
    import random
    results = []
    with tempfile.TemporaryDirectory() as folder:
        tok = tokenizer(random.Random(0))
        save_random(model_config(get_preset(preset).hub.reward_model), folder, tok, classifier=False,
                    device="cuda" if torch.cuda.is_available() else "cpu")
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, "-c", CHILD, variant, folder, str(ROOT), preset],
                                 capture_output=True, text=True)
            line = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else None
            results.append(json.loads(line) if line else {"variant": variant, "error": out.stderr[-2000:]})
            print(results[-1], flush=True)
    (ROOT / "bench" / "results" / "rm_memory_probe.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


WHAT = {"default": "as the stage runs it", "no_checkpointing": "without gradient checkpointing",
        "no_autocast": "without autocast (float32 compute)", "sgd": "SGD instead of AdamW (no moments)",
        "short_rows": "short rows (~60 tokens, no truncation)"}


def table(results):
    """docs/memory.md: the peak of each variant."""
    r0 = results[0]
    lines = [f"colab-t4's RM ({r0['params'] / 1e6:.0f}M parameters), {r0['rows']} rows × up to {r0['max_length']} "
             "tokens per step, 2 steps (`python bench/rm_memory_probe.py`):", "",
             "| variant | peak GiB |", "|---|---:|"]
    lines += [f"| {WHAT[r['variant']]} | {r['peak_gib']:.2f} |" for r in results]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--docs"]:  # rewrite docs/memory.md's table from the result file
        sys.path.insert(0, str(ROOT))
        from docs.update_numbers import replace
        replace(ROOT / "docs" / "memory.md", "rm-memory-probe",
                table(json.loads((ROOT / "bench" / "results" / "rm_memory_probe.json").read_text())))
    else:
        main(*sys.argv[1:2])
