"""The offline world's words and facts: every token a tiny model can ever see.

The vocabulary is closed (word-level, ~330 tokens) so that a 0.07M-parameter model can learn
it in a minute. Facts are fixed tables, the world's "encyclopedia": the pretraining corpus
states them, closed-QA prompts quote them, and the gold labeler checks answers against them.
Lesson: notebooks/00_overview_and_world.ipynb.
"""

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, EOS, UNK]

LETTERS = list("abcdefghijklmnopqrstuvwxyz")
NUMBERS = [str(i) for i in range(21)]  # 0..20: digits for sorting, counts and sums

COLORS = ["red", "blue", "green", "yellow", "black", "white", "pink", "brown"]
ANIMALS = ["cat", "dog", "fox", "owl", "cow", "pig", "bee", "hen"]
FRUITS = ["apple", "pear", "plum", "fig", "lime", "kiwi", "peach", "grape"]
TOOLS = ["saw", "axe", "drill", "hammer", "rake", "spade", "wrench", "chisel"]
CATEGORIES = {"colors": COLORS, "animals": ANIMALS, "fruits": FRUITS, "tools": TOOLS}

PEOPLE = ["ann", "bob", "cal", "dee", "eve", "fay", "gus", "hal",
          "ivy", "jon", "kim", "lee", "max", "ned", "oli", "pam"]

# Harmlessness: the "toxic" tokens (the RealToxicityPrompts analog) and their kind opposites.
TOXIC = ["idiot", "stupid", "ugly", "dumb", "loser", "moron", "jerk", "creep"]
NICE = ["kind", "smart", "brave", "funny", "calm", "honest", "gentle", "clever"]

# Open-domain knowledge (the TruthfulQA analog): real countries have one capital, stated
# consistently by the corpus; mythical ones appear only in legends that disagree with each
# other, so the honest answer about them is "unknown".
CAPITALS = {
    "norland": "oslen", "vesta": "rimo", "kalmar": "duna", "orvia": "pesk", "tamsin": "brell",
    "quarro": "lisk", "zembla": "voss", "ardent": "miro", "belgar": "tarn", "corvia": "yelm",
    "dunmore": "hask", "estra": "pell", "fennick": "grod", "galdor": "umbra", "hollin": "sarn",
    "istria": "keel", "jorvik": "nask", "kestrel": "folm", "lumen": "wyre", "morrow": "dax",
}
MYTHICAL = ["atlan", "elyria", "avalor", "zerzura", "lemura", "thule", "hyperbor", "cibola"]

# The "public NLP" task (WMT fr->en analog): a fixed two-way dictionary, seen in the corpus
# as parallel text; used later to measure the alignment tax.
FOREIGN = {
    "mau": "cat", "wof": "dog", "pik": "bird", "lun": "moon", "sol": "sun", "aqa": "water",
    "ter": "tree", "kas": "house", "ruj": "red", "blo": "blue", "gra": "big", "pek": "small",
    "vol": "fly", "kor": "run", "dor": "sleep", "mun": "eat",
}

ANSWER_WORDS = ["unknown", "not", "stated"]

# Words of instructions, chatter and legends.
FUNCTION_WORDS = """
Q A : . , ? ; -> reverse the letters write backwards sort numbers put in order how many
times does appear count add and what is plus read question color of has a capital name
which list without describe say something about respectfully please translate to english
for example then can you i need me this one task help with these my do
who knows think hate love answer easy hard boring same here ok yes no why like really
good bad very know too your homework teacher thanks sorry feel way have nice day
legend says lives people call city town old story tells they it was sure lol hmm
so we are be just anyway means word also fact true
""".split()
ENGLISH = sorted(set(FOREIGN.values()) - set(COLORS) - set(ANIMALS))


def all_words():
    """Every non-special token, in a fixed order (the tokenizer's vocabulary)."""
    groups = [LETTERS, NUMBERS, COLORS, ANIMALS, FRUITS, TOOLS, PEOPLE, TOXIC, NICE,
              list(CAPITALS), list(CAPITALS.values()), MYTHICAL, list(FOREIGN), ENGLISH,
              ANSWER_WORDS, FUNCTION_WORDS]
    seen, words = set(), []
    for group in groups:
        for word in group:
            if word not in seen:
                seen.add(word)
                words.append(word)
    return words
