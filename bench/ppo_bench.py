"""PPO: our trainer vs TRL 1.12's `trl.experimental.ppo.PPOTrainer` (issue #8). Writes
bench/results/ppo.json.

    .venv/bin/python bench/ppo_bench.py --run runs/cpu [--iterations 100]

Both start from the same SFT policy (`--policy`, default the cpu preset's xs), the same frozen
reference (a copy of it), the same reward model, and a value model initialised from that RM;
both sample at T = 1 with the same rollout batch, minibatch, response length, PPO epochs, β
(per-token k1 KL), clip ranges, γ, λ and learning rate, on the run's PPO prompts. One
difference is TRL's own: its minibatches are micro-batches of one accumulated optimizer step
per rollout, ours take one step each (the forward/backward work is the same). Timed: the
training loop. Then both policies (and the SFT start) answer the same held-out prompts, judged
by the gold labeler: sampled at T = 1 (the distribution PPO optimises) and greedy.
TRL 1.12 is installed (pinned, no dependencies: it shares this venv's torch/transformers) into
bench/.trl-1.12 and put first on the path of its own process.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine, write_result  # noqa: E402
from igpt_lib.config import get_preset  # noqa: E402
from igpt_lib.comparisons import comparisons_digest  # noqa: E402

TRL_VERSION, TRL_DIR = "1.12.0", REPO / "bench" / ".trl-1.12"
RESULTS = REPO / "bench" / "results" / "ppo.json"
GOAL_RATIO = 1.5


def ensure_trl():
    """TRL 1.12 in its own folder (pip --target), installed once."""
    if not (TRL_DIR / "trl" / "experimental" / "ppo").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(TRL_DIR),
                        f"trl=={TRL_VERSION}"], check=True)
    return TRL_DIR


def run_ours(run, cfg, iterations):
    from transformers import AutoModelForCausalLM
    from igpt_lib.data import load_prompts
    from igpt_lib.models import load_tokenizer
    from igpt_lib.ppo_trainer import PPOTrainer
    from igpt_lib.reward import load_reward_model
    sft = run / "sft" / cfg.policy
    tok = load_tokenizer(sft)
    policy, ref = AutoModelForCausalLM.from_pretrained(sft), AutoModelForCausalLM.from_pretrained(sft)
    reward, value = load_reward_model(run / "rm"), load_reward_model(run / "rm")
    rows = load_prompts(run / "world" / "data" / "prompts.ppo.jsonl")
    trainer = PPOTrainer(policy, ref, reward, value, tok, rows, cfg)
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.step()
    return trainer.finish(), tok, time.perf_counter() - start


def run_trl(run, cfg, iterations, save):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ensure_trl()), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(REPO / "bench" / "ppo_trl.py"), "--run", str(run), "--save", str(save),
                    "--policy", cfg.policy, "--iterations", str(iterations), "--batch-size", str(cfg.batch_size),
                    "--minibatch-size", str(cfg.minibatch_size), "--response-length", str(cfg.max_new_tokens),
                    "--ppo-epochs", str(cfg.ppo_epochs), "--kl-coef", str(cfg.kl_coef), "--lr", str(cfg.lr),
                    "--seed", str(cfg.seed)], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # its per-step metric dicts
    return json.loads((save / "timing.json").read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "cpu",
                    help="a cpu-preset run folder with world/, sft/ and rm/ (e.g. from bench/e2e.py)")
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--eval-prompts", type=int, default=400)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM
    from igpt_lib.evaluation import heldout_gold
    from igpt_lib.utils import quiet_transformers
    quiet_transformers()
    cfg = replace(get_preset("cpu").ppo, iterations=args.iterations, ptx_coef=0.0)
    for need in ("world/data/prompts.ppo.jsonl", f"sft/{cfg.policy}/model.safetensors", "rm/model.safetensors"):
        if not (args.run / need).exists():
            sys.exit(f"bench/ppo_bench.py: {args.run / need} not found (run `python -m igpt_lib rm --preset cpu "
                     f"--out {args.run}` first)")
    ours, tok, ours_s = run_ours(args.run, cfg, args.iterations)
    with tempfile.TemporaryDirectory() as tmp:
        timing = run_trl(args.run, cfg, args.iterations, Path(tmp) / "trl")
        theirs = AutoModelForCausalLM.from_pretrained(Path(tmp) / "trl").eval()
    sft = AutoModelForCausalLM.from_pretrained(args.run / "sft" / cfg.policy).eval()
    episodes = args.iterations * cfg.batch_size
    assert timing["episodes"] == episodes, timing
    policies = {"ours": ours.eval(), "trl": theirs, "sft": sft}
    gold = {how: heldout_gold(args.run, policies, tok, args.eval_prompts, cfg.max_new_tokens, paired=("ours", "trl"),
                              temperature=t, samples=s, seed=cfg.seed)
            for how, t, s in (("sampled", 1.0, 2), ("greedy", 0.0, 1))}
    result = {
        "ratio": round((episodes / ours_s) / (episodes / timing["seconds"]), 2),
        "ours_episodes_per_s": round(episodes / ours_s, 2), "trl_episodes_per_s": round(episodes / timing["seconds"], 2),
        "ours_gold": round(gold["sampled"]["ours"]["mean"], 4), "trl_gold": round(gold["sampled"]["trl"]["mean"], 4),
        "sft_gold": round(gold["sampled"]["sft"]["mean"], 4),
        "gold_difference_ci95": gold["sampled"]["difference"]["ci95"],
        "greedy": {k: round(gold["greedy"][k]["mean"], 4) for k in ("ours", "trl", "sft")},
        "ours_seconds": round(ours_s, 1), "trl_seconds": round(timing["seconds"], 1), "episodes": episodes,
        "trl_version": timing["trl"], "goal_ratio": GOAL_RATIO,
        "setup": {"policy": f"SFT-{cfg.policy}", "reward_and_value": "the run's RM",
                  "comparisons": comparisons_digest(args.run / "rm"), "iterations": args.iterations,
                  "batch_size": cfg.batch_size, "minibatch_size": cfg.minibatch_size, "ppo_epochs": cfg.ppo_epochs,
                  "response_length": cfg.max_new_tokens, "kl_coef": cfg.kl_coef, "lr": cfg.lr,
                  "eval_prompts": args.eval_prompts, "eval_samples_per_prompt": 2},
        "machine": machine()}
    print(f"{'':6s} {'episodes/s':>10} {'gold (T=1)':>10} {'gold (greedy)':>13}")
    for who in ("ours", "trl"):
        print(f"{who:6s} {result[f'{who}_episodes_per_s']:>10.2f} {result[f'{who}_gold']:>+10.3f} "
              f"{result['greedy'][who]:>+13.3f}")
    print(f"{'SFT':6s} {'':>10} {result['sft_gold']:>+10.3f} {result['greedy']['sft']:>+13.3f}")
    print(f"ratio {result['ratio']}× (goal ≥ {GOAL_RATIO}×); gold ours − TRL 95 % CI {result['gold_difference_ci95']}")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
