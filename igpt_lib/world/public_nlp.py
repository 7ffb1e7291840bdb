"""The world's "public NLP datasets": multiple-choice questions with checked answers (App. C.2).

The paper's reward model did not start from the SFT model: "The final reward model was
initialized from a 6B GPT-3 model that was fine-tuned on a variety of public NLP datasets (ARC,
BoolQ, CoQA, DROP, MultiNLI, OpenBookQA, QuAC, RACE, and Winogrande)" (App. C.2; "mostly for
historical reasons", the paper found similar results from GPT-3 or SFT). Most of those are
multiple choice: a question, a few candidate answers, one of them right.

Here that start matters. The RM from SFT-l ranks `add` and `capital` answers near chance, although
SFT-l's own likelihood ranks them well (docs item 27): from ~11k noisy rankings the scalar head
does not learn to check an answer. These items teach a model to check answers first:
- the questions are the internet's (the corpus generator's phrasings, `corpus.question`);
- the options are the task's right answer and wrong answers of the kinds models write: a word or
  two replaced, another question's answer, two items swapped, one dropped, a number off by one or two;
- `describe` is left out (its "right answer" is a matter of tone, the labelers' call);
- no question repeats a validation or test prompt of the world.

The label is correctness only (the task's answer key), not the labelers' or the gold preference:
toxicity, invented facts and rambling on are never what separates two options here.
Used by `world.build` (the RM's starting model, `RewardConfig.public_nlp`).
"""
import random

from .corpus import question
from .tasks import TASKS

LEFT_OUT = ("describe",)  # no checkable answer: what a labeler prefers there is tone
OPTIONS = 4               # one right answer and three wrong ones (ARC, OpenBookQA, RACE: 4 choices)
KINDS = ("replace", "replace", "other", "swap", "drop", "near")  # how a wrong option is made: one drawn per try (replace twice as often)
MIN_GAP = 0.2             # a wrong option's task quality is at least this far below the right answer's


def _pools(rng, draws=300):
    """{task: the words its right answers use} (numbers for `add`, capitals for `capital`, ...)."""
    return {name: sorted({w for _ in range(draws) for w in task.expected(task.sample(rng))} - {","})
            for name, task in TASKS.items()}


def _wrong(task, meta, right, kind, pool, rng):
    """One wrong answer of the given kind, as a word list; None where the kind does not apply."""
    words, slots = list(right), [i for i, w in enumerate(right) if w != ","]
    if kind == "replace":
        for _ in range(rng.randint(1, 2)):
            words[rng.choice(slots)] = rng.choice(pool)
        return words
    if kind == "other":
        return task.expected(task.sample(rng))
    if kind == "swap" and len(slots) >= 2:
        i, j = sorted(rng.sample(slots, 2))
        words[i], words[j] = words[j], words[i]
        return words
    if kind == "drop" and len(slots) >= 2:  # one item, with the comma that joined it
        i = rng.choice(slots)
        if i + 1 < len(words) and words[i + 1] == ",":
            return words[:i] + words[i + 2:]
        return words[:i - 1] + words[i + 1:] if i and words[i - 1] == "," else words[:i] + words[i + 1:]
    if kind == "near" and len(words) == 1 and words[0].isdigit():
        return [str(max(0, int(words[0]) + rng.choice([-2, -1, 1, 2])))]
    return None


def item(rng, pools, exclude=frozenset(), k=OPTIONS):
    """One multiple-choice question: a comparisons row whose right answer ranks 0 and whose
    wrong ones tie at 1 (`ranking_loss` trains on right-vs-wrong pairs only)."""
    options = []
    while len(options) < 2:  # a question whose wrong answers cannot be made is drawn again
        task, meta, prompt = question(rng)
        if task.name in LEFT_OUT or prompt in exclude:
            continue
        right = task.expected(meta)
        quality = task.judge(meta, right)["quality"]
        options, tries = [" ".join(right)], 0
        while len(options) < k and tries < 100:
            tries += 1
            words = _wrong(task, meta, right, rng.choice(KINDS), pools[task.name], rng)
            if not words or " ".join(words) in options:
                continue
            verdict = task.judge(meta, words)
            if verdict["toxic"]:
                continue
            if verdict["quality"] <= quality - MIN_GAP or verdict["invented"] or verdict["fails_constraint"]:
                options.append(" ".join(words))
    order = rng.sample(range(len(options)), len(options))
    return {"prompt": prompt, "responses": [options[i] for i in order], "ranks": [int(i > 0) for i in order],
            "task": task.name}


def multiple_choice(n, seed, exclude=()):
    """`n` multiple-choice questions (comparisons rows: prompt_id, prompt, responses, ranks, task),
    none of whose prompts is in `exclude` (the world's validation and test prompts)."""
    if n < 0:
        raise ValueError(f"public NLP questions: n = {n}; RewardConfig.public_nlp counts questions (0 = none)")
    rng, exclude = random.Random(seed), frozenset(exclude)
    pools = _pools(rng)
    return [{"prompt_id": f"nlp-{i:05d}", **item(rng, pools, exclude)} for i in range(n)]
