"""The world's word-level tokenizer: covers the world, round-trips text, reloads."""
from transformers import AutoTokenizer

from igpt_lib import data as D
from igpt_lib.world import vocab as V
from igpt_lib.world.corpus import make_corpus
from igpt_lib.world.tokenizer import train_tokenizer

from conftest import REPO


def _tok():
    return train_tokenizer(make_corpus(20_000, seed=0))


def test_round_trip_every_prompt_and_response():
    tok = _tok()
    rows = D.read_jsonl(REPO / "data" / "demonstrations.train.jsonl")
    for text in [r["prompt"] for r in rows] + [r["response"] for r in rows]:
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text


def test_every_world_word_has_an_id_and_specials_are_set():
    tok = _tok()
    ids = tok(" ".join(V.all_words()))["input_ids"]
    assert len(ids) == len(V.all_words()) and tok.unk_token_id not in ids
    assert tok.eos_token == V.EOS and tok.pad_token == V.PAD
    assert tok("a <eos>")["input_ids"][-1] == tok.eos_token_id


def test_deterministic_and_reloads_with_autotokenizer(tmp_path):
    a, b = _tok(), _tok()
    assert a.get_vocab() == b.get_vocab()
    a.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "Q : reverse the letters : a b c A : c b a"
    assert again(text)["input_ids"] == a(text)["input_ids"]
