"""Measured vs estimated peak memory (issue 7): `python bench/memory_check.py [--device cuda]`.

Each scenario — a training step (full, with and without gradient checkpointing; LoRA on an
8-bit base; a reward-model step) or a generation with the KV cache — runs in its own process
on a model with Pythia-70M's architecture and random weights, and its peak is compared with
`igpt_lib.memory.estimate` for the same shapes. CPU: the process's peak resident memory
minus what it held before the model was loaded (fp32). CUDA: `torch.cuda.max_memory_allocated`
(fp16 compute; weights as the stages keep them: float32 where they train, 16-bit where frozen).
Writes bench/results/memory_<device>.json and the table in docs/memory.md; `--tables` only
rewrites the tables (docs/memory.md, README) from the result files and the current plans.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = "EleutherAI/pythia-70m-deduped"  # architecture only; weights are random
SCENARIOS = {  # name -> estimate() arguments (the same dictionary drives the measured run)
    "full fine-tuning step": dict(train="full", batch=4, seq=256, checkpointing=False),
    "full step, gradient checkpointing": dict(train="full", batch=4, seq=256, checkpointing=True),
    "LoRA r=16 step, 8-bit base": dict(train="lora", bits=8, lora_r=16, batch=4, seq=256, checkpointing=True),
    "reward-model step (full)": dict(head="classifier", train="full", batch=8, seq=256, checkpointing=False),
    "generation, KV cache": dict(generate=16, seq=256),
}

CHILD = r'''
import json, sys, torch
args, folder, device = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, BitsAndBytesConfig
def status(field):  # kB lines of /proc/self/status
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(field + ":"))
cuda = device == "cuda"
auto = AutoModelForSequenceClassification if args.get("head") == "classifier" else AutoModelForCausalLM
kw = {"num_labels": 1} if args.get("head") == "classifier" else {}
if args.get("bits"):  # quantised models are placed at load time (.to() is refused for them on a GPU)
    kw |= {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": {"": device}}
# as the stages load them: weights that train are float32 (16-bit compute under autocast), frozen ones 16-bit
model = auto.from_pretrained(folder, dtype=torch.float16 if cuda and args.get("train") != "full" else torch.float32, **kw)
if not args.get("bits"):
    model = model.to(device)
model.config.pad_token_id = 0
# Loading has its own transient peak (file pages, conversion): the baseline is everything the
# process holds except the model's tensors, and the high-water mark starts again from here.
tensors = [*model.parameters(), *model.buffers()]
with torch.no_grad():  # weights may still be file pages (safetensors mmap): make them resident
    [t.sum() for t in tensors]
held = sum(t.numel() * t.element_size() for t in tensors)
if cuda:
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() - held
else:
    open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM (Linux >= 4.0)
    before = status("VmRSS") - held
b, s = args.get("batch") or args.get("generate"), args["seq"]
ids = torch.randint(0, 50000, (b, s), device=device)
if args.get("train"):
    if args["train"] == "lora":
        from peft import LoraConfig, get_peft_model
        model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=args["lora_r"], target_modules="all-linear"))
    if args.get("checkpointing"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    for _ in range(2):  # the second step runs with the optimizer state alive: the real peak
        with torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            out = model(input_ids=ids, labels=ids) if args.get("head") != "classifier" else model(input_ids=ids)
            loss = out.loss if args.get("head") != "classifier" else out.logits.float().square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
else:
    with torch.no_grad():
        model.generate(input_ids=ids[:, : s // 2], max_new_tokens=s // 2, min_new_tokens=s // 2,
                       do_sample=False, pad_token_id=0)
peak = torch.cuda.max_memory_allocated() if cuda else status("VmHWM")
print(json.dumps({"peak_bytes": peak - before}))
'''


def save_random_model(folder):
    """Pythia-70M's architecture with random weights, saved once for every scenario."""
    import torch
    from transformers import AutoModelForCausalLM
    from igpt_lib.memory import model_config
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(model_config(ARCH)).save_pretrained(folder)


def measure(args, folder, device="cpu"):
    """Peak bytes of one scenario, in a fresh process (so its high-water mark is its own)."""
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args), str(folder), device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]


def estimated(args, device="cpu"):
    from igpt_lib.memory import GIB, estimate, model_config, shape
    shp = shape(model_config(ARCH), head=args.get("head", "causal_lm"))
    est = estimate(ARCH, "check", "check", shp, dtype="float16" if device == "cuda" else "float32",
                   attention_scores=device == "cpu", **{k: v for k, v in args.items() if k != "head"})
    return est.total_gib * GIB


def run(device="cpu"):
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        save_random_model(folder)
        for name, args in SCENARIOS.items():
            measured, est = measure(args, folder, device), estimated(args, device)
            rows.append({"scenario": name, "measured_gib": measured / 2 ** 30, "estimated_gib": est / 2 ** 30,
                         "estimated_over_measured": est / measured, **args})
            print(f"{name:38s} measured {measured / 2**30:6.3f} GiB  estimated {est / 2**30:6.3f} GiB  "
                  f"ratio {est / measured:.2f}", flush=True)
    return rows


def table(result):
    lines = [f"Measured {result['date']} on {result['machine']} ({result['device']}, "
             f"{result['dtype']}), model: {ARCH}'s architecture with random weights; "
             f"weights: {result.get('weights', result['dtype'])}; `python bench/memory_check.py`.", "",
             "| scenario | batch × tokens | measured GiB | estimated GiB | estimated / measured |",
             "|---|---|---:|---:|---:|"]
    for r in result["rows"]:  # the estimate as the code computes it now (it is refined over time)
        scenario = {k: v for k, v in SCENARIOS[r["scenario"]].items()}
        r = {**r, "estimated_gib": estimated(scenario, result["device"]) / 2 ** 30}
        r["estimated_over_measured"] = r["estimated_gib"] / r["measured_gib"]
        lines.append(f"| {r['scenario']} | {r.get('batch') or r.get('generate')} × {r['seq']} | "
                     f"{r['measured_gib']:.3f} | {r['estimated_gib']:.3f} | {r['estimated_over_measured']:.2f} |")
    return "\n".join(lines)


def main():
    import os
    import platform
    sys.path.insert(0, str(ROOT))
    from docs.update_numbers import replace as replace_between
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--tables", action="store_true", help="measure nothing: rewrite the tables from the result files")
    args = ap.parse_args()
    device = args.device
    if not args.tables:
        rows = run(device)
        machine = (f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()})" if device == "cpu"
                   else __import__("torch").cuda.get_device_name())
        result = {"date": date.today().isoformat(), "device": device, "machine": machine,
                  "dtype": "float16" if device == "cuda" else "float32", "rows": rows,
                  "weights": "float32 where they train, float16 where frozen" if device == "cuda" else "float32"}
        out = ROOT / "bench" / "results" / f"memory_{device}.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
    for found in sorted((ROOT / "bench" / "results").glob("memory_*.json")):
        result = json.loads(found.read_text())
        replace_between(ROOT / "docs" / "memory.md", f"memory-{result['device']}", table(result))
    from igpt_lib.memory import plan
    for preset in ("colab-t4", "a100"):  # the estimates beside the measurements
        replace_between(ROOT / "docs" / "memory.md", f"plan-{preset}", plan(preset).table())
    replace_between(ROOT / "README.md", "gpu-presets", presets_table())
    from igpt_lib.gpu_time import table as time_table
    replace_between(ROOT / "README.md", "gpu-time", time_table())
    print("wrote docs/memory.md and README's GPU presets and time tables" + ("" if args.tables else f" and {out.relative_to(ROOT)}"))


def presets_table():
    """README: each hub preset's models, the headline's parameter ratio and the plan's peaks."""
    from igpt_lib.config import PRESETS
    from igpt_lib.memory import model_config, plan, shape
    rows = ["| preset | policies | large base model | headline ratio (paper 135×) | est. peak per phase, GiB "
            "| largest / card |", "|---|---|---|---:|---|---:|"]
    for name in ("colab-t4", "a100"):
        hub, p = PRESETS[name].hub, plan(name)
        ratio = shape(model_config(hub.baseline)).params / shape(model_config(hub.policies[0])).params
        phases = ", ".join(f"{k} {v:.1f}" for k, v in p.phases.items())
        rows.append(f"| `{name}` | {', '.join(n.split('/')[-1] for n in hub.policies)} | "
                    f"{hub.baseline.split('/')[-1]} ({hub.baseline_bits}-bit) | {ratio:.0f}× | {phases} | "
                    f"{p.total_gib:.1f} / {hub.gpu_gib:g} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
