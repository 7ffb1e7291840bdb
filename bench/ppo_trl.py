"""The peer side of bench/ppo_bench.py: TRL 1.12's `trl.experimental.ppo.PPOTrainer` (the last
PPO trainer TRL shipped) on the same models and prompts. Run by ppo_bench.py with TRL 1.12
first on the path (`make bench` installs it into bench/.trl-1.12); it imports no igpt_lib,
so it runs whatever TRL the path holds, and writes the trained policy and its timing to --save.

    PYTHONPATH=bench/.trl-1.12 .venv/bin/python bench/ppo_trl.py --run RUN --save DIR ...
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True, help="a run folder with world/, sft/<policy>/ and rm/")
    ap.add_argument("--save", type=Path, required=True)
    ap.add_argument("--policy", default="xs")
    ap.add_argument("--iterations", type=int, required=True)
    ap.add_argument("--batch-size", type=int, required=True)
    ap.add_argument("--minibatch-size", type=int, required=True)
    ap.add_argument("--response-length", type=int, required=True)
    ap.add_argument("--ppo-epochs", type=int, required=True)
    ap.add_argument("--kl-coef", type=float, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl.experimental.ppo import PPOConfig, PPOTrainer
    sft, rm = args.run / "sft" / args.policy, args.run / "rm"
    tok = AutoTokenizer.from_pretrained(sft)
    side, tok.padding_side = tok.padding_side, "left"  # TRL's collator pads queries on this side
    prompts = [json.loads(line)["prompt"] for line in
               (args.run / "world" / "data" / "prompts.ppo.jsonl").read_text().splitlines() if line.strip()]
    data = Dataset.from_dict({"input_ids": tok(prompts, add_special_tokens=False)["input_ids"]})
    torch.manual_seed(args.seed)
    policy, ref = AutoModelForCausalLM.from_pretrained(sft), AutoModelForCausalLM.from_pretrained(sft)
    reward = AutoModelForSequenceClassification.from_pretrained(rm, num_labels=1)
    value = AutoModelForSequenceClassification.from_pretrained(rm, num_labels=1)  # value from the RM, as ours
    minibatches = args.batch_size // args.minibatch_size
    with tempfile.TemporaryDirectory() as tmp:
        cfg = PPOConfig(
            output_dir=tmp, total_episodes=args.iterations * args.batch_size,
            # TRL 1.12: rollout batch = per_device_train_batch_size × gradient_accumulation_steps,
            # split into num_mini_batches forwards (its micro-batches accumulate into one step)
            per_device_train_batch_size=args.minibatch_size, gradient_accumulation_steps=minibatches,
            num_mini_batches=minibatches, local_rollout_forward_batch_size=args.batch_size,
            num_ppo_epochs=args.ppo_epochs, response_length=args.response_length, temperature=1.0,
            stop_token="eos", kl_coef=args.kl_coef, kl_estimator="k1", cliprange=0.2, cliprange_value=0.2,
            gamma=1.0, lam=0.95, whiten_rewards=False, learning_rate=args.lr, lr_scheduler_type="constant",
            adam_beta2=0.95, num_sample_generations=0, save_strategy="no", report_to="none",
            logging_steps=10_000, disable_tqdm=True, bf16=False, use_cpu=True, seed=args.seed,
            dataloader_num_workers=0, missing_eos_penalty=None)
        trainer = PPOTrainer(args=cfg, processing_class=tok, model=policy, ref_model=ref, reward_model=reward,
                             train_dataset=data, value_model=value)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    policy.save_pretrained(args.save)
    tok.padding_side = side
    tok.save_pretrained(args.save)
    (args.save / "timing.json").write_text(json.dumps({
        "seconds": seconds, "episodes": cfg.num_total_batches * cfg.batch_size, "trl": trl.__version__}))


if __name__ == "__main__":
    main()
