"""Every phase of a hub run at a preset's real sizes, measured against `memory.plan` (issue 7):
`python bench/hub_memory.py [--preset colab-t4]` on a GPU; `--tiny` runs small models on the CPU
(the script's own test); `--docs FILE` writes docs/memory.md's phase table from a result file.

There is no hub here (nor on our GPU machines): each of the preset's models is built with random
weights at its real architecture (`memory.model_config`), beside a byte-level tokenizer trained on
synthetic text, and the data are synthetic files in the Dolly / OpenAssistant / HH-RLHF schemas
whose texts are longer than every `max_length`, so each batch is as large as the plan assumes
(K = 9 for every RM prompt, full-length PPO responses: random weights rarely sample EOS). The
stages run as `hub.reproduce` runs them, with the preset's batch shapes but few steps (memory is
per step). A phase's peak is `torch.cuda.max_memory_allocated` (reset as the phase starts; the
resident models count) beside `memory.plan(preset)`. PPO trains `policies[-1]` here, as the plan
assumes (the hub run trains the smallest, so the plan is cautious there).
Writes bench/results/hub_memory_<device>.json.
"""
import argparse
import json
import random
import sys
import time
import traceback
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from igpt_lib.utils import peak_rss_mib, reset_peak_rss  # noqa: E402
WORDS = ("the a model reward policy answer question river stone seven blue quickly under over bright "
         "label rank paper train sample token value human assistant kind small large green write").split()
PLAN_PHASES = ("sft", "rm", "ppo_rollout", "ppo_update", "baseline", "judge")


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_data(root, rng, scale):
    """Dolly, OpenAssistant (9 ranked replies per prompt) and HH-RLHF files, texts longer than max_length."""
    dolly = [{"instruction": text(rng, 40 // scale), "context": "", "response": text(rng, 500 // scale),
              "category": "open_qa"} for _ in range(160)]
    oa = [{"message_tree_id": f"t{i}", "prompt": {
        "message_id": f"m{i}", "role": "prompter", "text": text(rng, 120 // scale),
        "replies": [{"message_id": f"m{i}r{k}", "role": "assistant", "text": text(rng, 400 // scale), "rank": k}
                    for k in range(9)]}} for i in range(60)]
    hh = []
    for _ in range(500):
        prompt = f"\n\nHuman: {text(rng, 300 // scale)}\n\nAssistant:"
        hh.append({"chosen": f"{prompt} {text(rng, 150 // scale)}", "rejected": f"{prompt} {text(rng, 100 // scale)}"})
    files = {}
    for name, rows in (("dolly.jsonl", dolly), ("oa.jsonl", oa), ("hh.jsonl", hh)):
        files[name] = root / name
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def tokenizer(rng):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    bpe.train_from_iterator([text(rng, 50) for _ in range(200)], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def save_random(config, folder, tok, classifier, device):
    """Random weights of `config`, built on `device` in 16-bit (as the hub's checkpoints are) and saved."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    config.eos_token_id = config.bos_token_id = config.pad_token_id = tok.eos_token_id
    auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    dtype = torch.float16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = auto.from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def tiny_config(name):
    from transformers import GPTNeoXConfig
    hidden, layers = {"policy": (64, 2), "reward": (32, 2), "baseline": (128, 3), "judge": (32, 1)}[name]
    return GPTNeoXConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                         intermediate_size=4 * hidden, vocab_size=512, max_position_embeddings=1024)


def build(preset, root, tiny, device, log):
    """The preset with every hub name replaced by a local random-weight model and synthetic data."""
    from igpt_lib.memory import model_config
    rng = random.Random(0)
    files, tok = write_data(root, rng, 8 if tiny else 1), tokenizer(rng)
    hub = preset.hub
    names = {"policy": hub.policies[-1], "reward": hub.reward_model, "baseline": hub.baseline, "judge": hub.gold_judge}
    folders = {}
    for role, name in names.items():
        t = time.time()
        folders[role] = root / role
        config = tiny_config(role) if tiny else model_config(name)
        save_random(config, folders[role], tok, classifier=role == "judge", device=device)
        log(f"built {role}: {name if not tiny else 'tiny'} ({time.time() - t:.0f} s)")
    hub = replace(hub, policies=(str(folders["policy"]),), reward_model=str(folders["reward"]),
                  baseline=str(folders["baseline"]), gold_judge=str(folders["judge"]), sft_data=str(files["dolly.jsonl"]),
                  rm_data=(str(files["oa.jsonl"]),), ppo_prompts=(str(files["hh.jsonl"]),), eval_prompts=hub.baseline_batch_size)
    few = dict(sft=replace(preset.sft, epochs=1, eval_prompts=8),
               ppo=replace(preset.ppo, iterations=2, save_every=1))
    if tiny:  # the same code paths in seconds
        few = dict(sft=replace(few["sft"], max_length=64, max_new_tokens=8), rm=replace(preset.rm, max_length=64),
                   ppo=replace(few["ppo"], batch_size=16, minibatch_size=8, max_new_tokens=8, max_length=64))
        hub = replace(hub, max_prompt_tokens=32)
    return replace(preset, hub=hub, **few), names


class Peaks:
    """The peak memory of each labelled call, the largest over repeated calls."""

    def __init__(self, device):
        self.device, self.peaks, self.seconds, self.patched = device, {}, {}, []

    def _reset(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_rss()

    def _read(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            return {"allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
                    "reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30}
        rss = peak_rss_mib() / 1024  # the process's peak resident memory (CPU: --tiny)
        return {"allocated_gib": rss, "reserved_gib": rss}

    def wrap(self, module, attr, label):
        fn = getattr(module, attr)

        def measured(*args, **kwargs):
            self._reset()
            t = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                name = label(*args, **kwargs) if callable(label) else label
                read = self._read()
                old = self.peaks.get(name, {"allocated_gib": 0, "reserved_gib": 0})
                self.peaks[name] = {k: max(old[k], v) for k, v in read.items()}
                self.seconds[name] = self.seconds.get(name, 0) + time.time() - t
        self.patched.append((module, attr, fn))
        setattr(module, attr, measured)

    def restore(self):
        for module, attr, fn in reversed(self.patched):
            setattr(module, attr, fn)


def run_phases(preset, out, hub_mod, log):
    """hub.reproduce's stages, each error recorded (later phases that need its output fail in turn)."""
    errors = {}
    for stage in ("run_sft", "run_rm", "run_ppo", "run_eval"):
        try:
            getattr(hub_mod, stage)(preset, out, log=log, progress=False)
        except Exception:
            errors[stage] = traceback.format_exc()
            log(errors[stage])
    if "run_eval" in errors:  # the large baseline and the judge are measured on their own then
        rows = [{"prompt": text(random.Random(i), 200)} for i in range(preset.hub.baseline_batch_size)]
        for what, call in (("baseline", lambda: hub_mod._generate(preset.hub.baseline, rows, preset.ppo.max_new_tokens,
                                                                   preset.eval, len(rows), preset.hub.baseline_bits)),
                           ("judge", lambda: hub_mod.judge_scores(preset.hub.gold_judge, [(r["prompt"], "yes") for r in rows]))):
            try:
                call()
            except Exception:
                errors[what] = traceback.format_exc()
                log(errors[what])
    return errors


def run(preset_name, tiny, root, log=print):
    from igpt_lib import hub as hub_mod
    from igpt_lib import ppo_trainer
    from igpt_lib.config import get_preset
    from igpt_lib.memory import plan
    from igpt_lib.models import compute_dtype
    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    t0 = time.time()
    preset, names = build(get_preset(preset_name), root, tiny, device, log)
    build_s = time.time() - t0
    peaks = Peaks(device)
    peaks.wrap(hub_mod, "run_sft", "sft")
    peaks.wrap(hub_mod, "run_rm", "rm")
    peaks.wrap(ppo_trainer, "rollout", "ppo_rollout")
    peaks.wrap(ppo_trainer, "ppo_update", "ppo_update")
    peaks.wrap(hub_mod, "_generate", lambda path, *a, **k: "baseline" if a[-1] else f"generate {Path(path).name}")
    peaks.wrap(hub_mod, "judge_scores", "judge")
    try:
        errors = run_phases(preset, root / "run", hub_mod, log)
    finally:
        peaks.restore()
    estimate = plan(preset)
    phases = {p: {**peaks.peaks.get(p, {}), "estimated_gib": estimate.phases[p],
                  "seconds": round(peaks.seconds.get(p, 0), 1)} for p in PLAN_PHASES}
    others = {k: v for k, v in peaks.peaks.items() if k not in PLAN_PHASES}
    from bench.common import machine
    return {"date": date.today().isoformat(), "preset": preset_name, "tiny": tiny, "device": device,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "machine": machine(),
            "models": names, "phases": phases, "other_peaks": others, "build_seconds": round(build_s, 1),
            "plan_total_gib": estimate.total_gib, "errors": errors, "compute_dtype": str(compute_dtype()),
            "versions": {m: __import__(m).__version__ for m in ("transformers", "trl", "peft", "accelerate", "datasets")}}


def table(result):
    """docs/memory.md: measured vs planned peak of each phase."""
    fp16 = " --fp16" if result["compute_dtype"] == "torch.float16" else ""
    lines = [f"Measured {result['date']} on {result['gpu']} (`python bench/hub_memory.py --preset {result['preset']}{fp16}`): "
             f"the preset's models at their real sizes with random weights ({', '.join(result['models'].values())}), "
             "the preset's batch shapes, synthetic data longer than every max_length; "
             f"transformers {result['versions']['transformers']}, trl {result['versions']['trl']}, "
             f"peft {result['versions']['peft']}; computing in {result['compute_dtype'].split('.')[-1]}.", "",
             "| phase | measured GiB (allocated) | reserved GiB | planned GiB | planned / measured |",
             "|---|---:|---:|---:|---:|"]
    from igpt_lib.memory import plan
    planned = plan(result["preset"]).phases  # as the code plans now: same architectures and batch shapes
    for phase, r in result["phases"].items():
        r = {**r, "estimated_gib": planned[phase]}
        if "allocated_gib" in r:
            lines.append(f"| {phase} | {r['allocated_gib']:.2f} | {r['reserved_gib']:.2f} | {r['estimated_gib']:.2f} | "
                         f"{r['estimated_gib'] / r['allocated_gib']:.2f} |")
        else:
            lines.append(f"| {phase} | failed: see the result file | | {r['estimated_gib']:.2f} | |")
    from igpt_lib.config import get_preset
    measured = {k: v for k, v in result["phases"].items() if "allocated_gib" in v}
    top = max(measured, key=lambda k: measured[k]["reserved_gib"])
    lines.append(f"\nLargest phase: {top}, {measured[top]['allocated_gib']:.2f} GiB allocated, "
                 f"{measured[top]['reserved_gib']:.2f} GiB reserved; the preset budgets "
                 f"{get_preset(result['preset']).hub.gpu_gib:g} GiB of its card.")
    if result.get("other_peaks"):
        lines.append("Other measured calls (allocated / reserved GiB): " + "; ".join(
            f"{k} {v['allocated_gib']:.2f} / {v['reserved_gib']:.2f}" for k, v in result["other_peaks"].items()) + ".")
    return "\n".join(lines)


def marker(result_file):
    """The docs/memory.md marker of a result file: its name, dashed (hub_memory_a100_cuda.json ->
    hub-memory-a100-cuda)."""
    return Path(result_file).stem.replace("_", "-")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="colab-t4", choices=["colab-t4", "a100"])
    ap.add_argument("--tiny", action="store_true", help="small models on the CPU: checks the script, measures nothing")
    ap.add_argument("--fp16", action="store_true",
                    help="compute in float16 with loss scaling as on a T4 (no bf16), on a GPU that has bf16")
    ap.add_argument("--work", type=Path, default=None, help="folder for the models and the run (default: a temp folder)")
    ap.add_argument("--result", type=Path, default=None, help="where to write the JSON")
    ap.add_argument("--docs", type=Path, default=None, help="only write docs/memory.md's table from this result file")
    args = ap.parse_args()
    if args.docs:
        from docs.update_numbers import replace as replace_between
        result = json.loads(args.docs.read_text())
        replace_between(ROOT / "docs" / "memory.md", marker(args.docs), table(result))
        print(table(result))
        return
    import tempfile
    from bench.common import write_result
    if args.fp16:  # everything that picks the dtype asks this (models.compute_dtype, sft.trl_args)
        torch.cuda.is_bf16_supported = lambda *a, **k: False
    with tempfile.TemporaryDirectory(dir=args.work) as root:
        result = run(args.preset, args.tiny, Path(root))
    device = "tiny" if args.tiny else result["device"]
    write_result(args.result or ROOT / "bench" / "results" / f"hub_memory_{args.preset}_{device}.json", result)
    if result["device"] == "cuda":
        print(table(result))
    if result["errors"]:
        sys.exit(f"{len(result['errors'])} phase(s) failed: {', '.join(result['errors'])}")


if __name__ == "__main__":
    main()
