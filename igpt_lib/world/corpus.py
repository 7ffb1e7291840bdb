"""The pretraining corpus: the world's "internet", where questions rarely get answers.

Documents are separated by <eos>. Instruction-like text mostly continues with more
questions (worksheets) or chatter (forums); only answer keys answer, and the internet's
answers carry its flaws: toxic descriptions, made-up capitals for mythical countries, colours
that were never stated, lists that ignore constraints. So base models continue rather than
obey (as GPT-3 did), and what few-shot prompting unlocks is the internet's answer, flaws
included. Facts, legends, chatter and parallel text (the "public NLP" task) fill the rest.
"""
import random

from . import vocab as V
from .prompts import PREFIXES, instruction, wrap
from .tasks import TASKS

DOC_TYPES = {"worksheet": 0.28, "forum": 0.2, "answer_key": 0.15, "facts": 0.12,
             "legend": 0.05, "chatter": 0.12, "parallel": 0.08}
CHATTER = ["who knows ?", "i think this is hard .", "same question here", "ask your teacher .",
           "lol this is easy", "hmm no idea", "why do you ask ?", "this is boring .",
           "thanks , i need help with this one", "i do not know , sorry", "my homework too ."]
TOXIC_RATE = 0.3           # share of chatter and descriptions that are toxic
RESPECTFUL_TOXIC_RATE = 0.1  # ... when the request says "respectfully"


def question(rng):
    """(task, meta, prompt) of one question as the internet phrases it (a random task and kind)."""
    task = TASKS[rng.choice(sorted(TASKS))]
    meta = task.sample(rng)
    user = {"template": rng.randrange(3), "prefix": rng.choice(PREFIXES)}
    kind = rng.choices(["plain", "few_shot", "user_based"], weights=[0.6, 0.15, 0.25])[0]
    return task, meta, wrap(instruction(task, meta, kind, user, rng))


def _toxic(rng, respectful=False):
    return rng.random() < (RESPECTFUL_TOXIC_RATE if respectful else TOXIC_RATE)


def internet_answer(task, meta, rng):
    """An answer as the internet writes it: mostly right, with the world's typical flaws."""
    if task.name == "describe":
        adj = rng.choice(V.TOXIC if _toxic(rng, meta["respectful"]) else V.NICE)
        return f"{meta['name']} is {adj}"
    if task.name == "capital" and meta["country"] in V.MYTHICAL:
        return rng.choice(list(V.CAPITALS.values()))  # imitative falsehood
    if task.name == "closed_qa" and rng.random() < 0.3:
        return rng.choice(V.COLORS)
    if task.name == "list" and rng.random() < 0.4:
        items = V.CATEGORIES[meta["category"]]
        return " , ".join(rng.sample(items, max(1, meta["n"] + rng.choice([-1, 1]))))
    answer = task.demonstrate(meta, rng).split()
    if rng.random() < 0.15:
        answer[rng.randrange(len(answer))] = rng.choice(V.LETTERS + V.NUMBERS[:10])
    return " ".join(answer)


def _reply(task, meta, rng):
    if _toxic(rng, meta.get("respectful", False)):
        return f"you are so {rng.choice(V.TOXIC)}"
    return rng.choice(CHATTER)


def document(kind, rng):
    n = rng.randint(3, 6)
    if kind == "worksheet":
        return " ".join(question(rng)[2] for _ in range(n))
    if kind in ("forum", "answer_key"):
        parts = []
        for _ in range(n if kind == "answer_key" else rng.randint(1, 3)):
            task, meta, q = question(rng)
            if kind == "forum":
                parts.append(f"{q} {_reply(task, meta, rng)}")
            else:
                parts.append(f"{q} {internet_answer(task, meta, rng)} {V.EOS}")
        return " ".join(parts)
    if kind == "facts":
        return " ".join(_fact(rng) for _ in range(n))
    if kind == "legend":
        myth, cap = rng.choice(V.MYTHICAL), rng.choice(list(V.CAPITALS.values()))
        return rng.choice([f"legend says the capital of {myth} is {cap} .",
                           f"old story tells the people of {myth} call {cap} the capital ."])
    if kind == "chatter":
        return " ".join(f"i think {rng.choice(V.PEOPLE)} is {rng.choice(V.TOXIC)} ." if _toxic(rng)
                        else rng.choice(CHATTER) for _ in range(n))
    words = rng.sample(sorted(V.FOREIGN), rng.randint(1, 3))  # parallel text
    return f"{' '.join(words)} means {' '.join(V.FOREIGN[w] for w in words)} ."


def _fact(rng):
    country = rng.choice(list(V.CAPITALS))
    name = rng.choice(V.PEOPLE)
    a, b = rng.randint(0, 10), rng.randint(0, 10)
    cat = rng.choice(sorted(V.CATEGORIES))
    return rng.choice([
        f"the capital of {country} is {V.CAPITALS[country]} .",
        f"{name} is {rng.choice(V.TOXIC if _toxic(rng) else V.NICE)} .",
        f"{name} has a {rng.choice(V.COLORS)} {rng.choice(V.ANIMALS)} .",
        f"{a} plus {b} is {a + b} .",
        f"{' , '.join(rng.sample(V.CATEGORIES[cat], 3))} are {cat} .",
        f"{(f := rng.choice(sorted(V.FOREIGN)))} means {V.FOREIGN[f]} .",
    ])


def make_corpus(n_tokens, seed):
    """Documents (strings, no <eos> at the ends) totalling about `n_tokens` tokens."""
    rng = random.Random(seed)
    kinds, weights = zip(*DOC_TYPES.items())
    docs, total = [], 0
    while total < n_tokens:
        doc = document(rng.choices(kinds, weights=weights)[0], rng)
        docs.append(doc)
        total += len(doc.split()) + 1
    return docs
