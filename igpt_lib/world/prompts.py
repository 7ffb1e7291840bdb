"""Users, prompts in the paper's three kinds, and the split by user ID (§3.2).

Each user has a handful of use cases (a task mix), a phrasing habit and ≤ 200 prompts.
A prompt is one of: plain (a task phrased from the templates), few-shot (an instruction with
one worked example inline) or user-based (the user's own habitual phrasing). Users — never
single prompts — are assigned to train / val / test, so no user is in two splits.
The model-facing text of every prompt is `Q : {instruction} A :`; responses end with <eos>.
"""
import random

from .tasks import TASKS

PREFIXES = ("please", "can you", "i need you to", "help me")


def wrap(instruction):
    """The world's prompt template (the stand-in for an API request)."""
    return f"Q : {instruction} A :"


def instruction(task, meta, kind, user, rng):
    """Phrase a task instance as a plain, few-shot or user-based instruction."""
    if kind == "few_shot" and task.few_shot_phrase:
        example = task.sample(rng)
        ex_in, ex_out = task.io(example)
        x_in, _ = task.io(meta)
        return f"{task.few_shot_phrase} . {ex_in} -> {ex_out} ; {x_in} ->"
    if kind == "user_based":
        template = task.templates[user["template"] % len(task.templates)]
        return f"{user['prefix']} {template.format(**task.fill(meta))}"
    return rng.choice(task.templates).format(**task.fill(meta))


def make_users(n_prompts, cfg, rng, prefix="u"):
    """Users until they hold `n_prompts` prompts; a few heavy users, many light ones."""
    users, total = [], 0
    while total < n_prompts:
        n = min(cfg.max_prompts_per_user, max(1, round(rng.lognormvariate(2.0, 1.0))))  # median 7
        tasks = rng.sample(sorted(TASKS), rng.randint(3, len(TASKS)))
        users.append({"user_id": f"{prefix}{len(users):04d}", "n": n, "tasks": tasks,
                      "template": rng.randrange(3), "prefix": rng.choice(PREFIXES)})
        total += n
    return users


def user_prompts(user, cfg, rng):
    kinds, weights = zip(*cfg.kind_probs)
    rows = []
    for _ in range(user["n"]):
        task = TASKS[rng.choice(user["tasks"])]
        meta = task.sample(rng)
        kind = rng.choices(kinds, weights=weights)[0]
        if kind == "few_shot" and not task.few_shot_phrase:
            kind = "plain"
        rows.append({"prompt": wrap(instruction(task, meta, kind, user, rng)),
                     "user_id": user["user_id"], "task": task.name, "kind": kind, "meta": meta})
    return rows


def split_users(users, cfg, rng):
    """Shuffle users, then fill test, then val, by prompt count; the rest train."""
    users = users[:]
    rng.shuffle(users)
    total = sum(u["n"] for u in users)
    splits, filled = {"test": [], "val": [], "train": []}, 0
    for user in users:
        if filled < cfg.test_frac * total:
            splits["test"].append(user)
        elif filled < (cfg.test_frac + cfg.val_frac) * total:
            splits["val"].append(user)
        else:
            splits["train"].append(user)
        filled += user["n"]
    return splits


def make_prompts(cfg):
    """{split: rows}: train rows carry `stage` (sft / rm / ppo) in the paper's proportions."""
    n_train = sum(cfg.n_prompts(s) for s in ("sft", "rm", "ppo"))
    for margin in (1.05, 1.2, 1.5, 2.0):  # a heavy user at the split boundary can starve train
        rng = random.Random(cfg.seed)
        users = make_users(round(n_train / (1 - cfg.val_frac - cfg.test_frac) * margin), cfg, rng)
        out = {split: [row for u in members for row in user_prompts(u, cfg, rng)]
               for split, members in split_users(users, cfg, rng).items()}
        if len(out["train"]) >= n_train:
            break
    train_texts = {r["prompt"] for r in out["train"]}
    for split in ("val", "test"):  # held-out prompts must not repeat a training prompt
        out[split] = [r for r in out[split] if r["prompt"] not in train_texts]
    rng.shuffle(out["train"])
    start = 0
    for stage in ("sft", "rm", "ppo"):
        for row in out["train"][start:start + cfg.n_prompts(stage)]:
            row["stage"] = stage
        start += cfg.n_prompts(stage)
    out["train"] = [r for r in out["train"] if "stage" in r]
    for split, rows in out.items():
        for i, row in enumerate(rows):
            row["prompt_id"] = f"{split}-{i:05d}"
    return out


def more_rm_prompts(cfg, prompts, n=None, taken_too=(), batch=0):
    """The RM's prompts beyond the paper's proportion: `n` of them (default: as `cfg.rm_scale` asks),
    from new training users (ids r0-0000, ...) drawn with their own seed after the split, so no other
    prompt of the world changes; none repeats a prompt text of `prompts` (make_prompts' result), of
    `taken_too` or of each other. `batch` > 0 draws another batch of new users with another seed (ids
    r{batch}.0-0000, ...; prompt ids after `taken_too`'s): more RM prompts for a world that has its own
    (`bench/rm_seeds.py --extra-prompts`, `taken_too` the world's prompts)."""
    n = cfg.n_rm_prompts() - cfg.n_prompts("rm") if n is None else n
    if n < 0:
        raise ValueError(f"WorldConfig.rm_scale = {cfg.rm_scale} > scale = {cfg.scale}: rm_scale only adds RM prompts")
    taken = {r["prompt"] for split in prompts.values() for r in split} | {r["prompt"] for r in taken_too}
    seed, prefix, first = (cfg.seed + 3, "r", len(prompts["train"])) if not batch else \
        (cfg.seed + 3 + 1000 * batch, f"r{batch}.", len(prompts["train"]) + len(taken_too))
    return [{**row, "stage": "rm", "prompt_id": f"train-{first + i:05d}"}
            for i, row in enumerate(_new_users_prompts(cfg, n, taken, seed, prefix, "rm_scale"))]


def more_test_prompts(cfg, prompts, taken_too=()):
    """Held-out test prompts beyond the split's, up to `cfg.test_prompts` in all: from new held-out
    users (ids t0-0000, ...) drawn with their own seed after the split, so no other prompt changes;
    none repeats a prompt text of `prompts`, of `taken_too` (the extra RM prompts) or of each other.
    More test prompts narrow the CIs of every held-out comparison (PPO − SFT: docs item 40)."""
    n = max(0, (cfg.test_prompts or 0) - len(prompts["test"]))
    taken = {r["prompt"] for split in prompts.values() for r in split} | {r["prompt"] for r in taken_too}
    return [{**row, "prompt_id": f"test-{len(prompts['test']) + i:05d}"}
            for i, row in enumerate(_new_users_prompts(cfg, n, taken, cfg.seed + 4, "t", "test_prompts"))]


def _new_users_prompts(cfg, n, taken, seed, prefix, field):
    """`n` prompts of new users (ids {prefix}0-0000, ...), none of whose texts is in `taken`."""
    # the world seed + 1: labelers, + 2: corpus, + 3 / + 4: these, + 5: public NLP questions (world/build.py)
    rng, rows, draw, before = random.Random(seed), [], 0, 0
    taken = set(taken)
    while len(rows) < n:  # more users while repeated texts leave it short
        if draw and len(rows) == before:
            raise ValueError(f"WorldConfig.{field} = {getattr(cfg, field)}: the tasks' prompt texts ran out "
                             f"after {len(rows)} new prompts of {n}")
        draw, before = draw + 1, len(rows)
        for user in make_users(n - len(rows), cfg, rng, prefix=f"{prefix}{draw - 1}-"):
            for row in user_prompts(user, cfg, rng):
                if row["prompt"] not in taken and len(rows) < n:
                    taken.add(row["prompt"])
                    rows.append(row)
    return rows


# "GPT-prompted" (§4.1, Figure 1): one fixed few-shot prefix, the same for every prompt, that
# puts a base model into instruction-following mode. It shows three answered requests; it
# does not pick examples per task, and it cannot say what labelers prefer beyond that.
GPT_PROMPT_PREFIX = ("Q : reverse the letters : a b c A : c b a <eos> "
                     "Q : what is the capital of norland ? A : oslen <eos> "
                     "Q : name 2 colors A : red , blue <eos> ")


def gpt_prompted(prompt):
    return GPT_PROMPT_PREFIX + prompt
