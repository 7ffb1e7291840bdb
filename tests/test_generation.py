"""Batched, left-padded generation equals one-prompt-at-a-time generation."""
from transformers import AutoModelForCausalLM, AutoTokenizer

from igpt_lib.generation import generate


def test_batched_left_padding_matches_single(smoke_world):
    out, _ = smoke_world
    tok = AutoTokenizer.from_pretrained(out / "world" / "tokenizer")
    model = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / "l")
    prompts = ["Q : add 2 and 3 A :", "Q : reverse the letters : a b c d e f A :",
               "Q : describe ann A :", "Q : what is the capital of norland ? A :"]
    batched = generate(model, tok, prompts, max_new_tokens=8, batch_size=4)
    single = [generate(model, tok, [p], max_new_tokens=8)[0] for p in prompts]
    assert batched == single
    assert all("<pad>" not in y and "<eos>" not in y for y in batched)
    assert tok.padding_side == "right"  # restored after generation


def test_sampling_is_seeded(smoke_world):
    import torch
    out, _ = smoke_world
    tok = AutoTokenizer.from_pretrained(out / "world" / "tokenizer")
    model = AutoModelForCausalLM.from_pretrained(out / "world" / "models" / "xs")
    torch.manual_seed(0)
    a = generate(model, tok, ["Q : describe ann A :"] * 6, 8, temperature=1.0)
    torch.manual_seed(0)
    b = generate(model, tok, ["Q : describe ann A :"] * 6, 8, temperature=1.0)
    assert a == b and len(set(a)) > 1
