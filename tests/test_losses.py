"""Losses: hand-computed cases and equality with the ecosystem's own numbers."""
import math

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from igpt_lib.losses import masked_mean, sft_loss


def test_sft_loss_hand_case():
    # One row, T = 3, V = 2. Position 0 predicts labels[1] (a prompt token: −100),
    # position 1 predicts labels[2] = 1 with logits (0, ln 3): p = 3/4.
    logits = torch.tensor([[[0.0, 0.0], [0.0, math.log(3.0)], [5.0, -5.0]]])
    labels = torch.tensor([[-100, -100, 1]])
    assert torch.allclose(sft_loss(logits, labels), torch.tensor(-math.log(0.75)))


def test_sft_loss_averages_over_counted_tokens_of_the_whole_batch():
    logits = torch.zeros(2, 4, 8)  # uniform: every counted token costs ln 8
    labels = torch.tensor([[-100, 1, 2, 3], [-100, -100, -100, 4]])
    assert torch.allclose(sft_loss(logits, labels), torch.tensor(math.log(8.0)))


def test_sft_loss_equals_the_transformers_model_loss():
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    model = GPTNeoXForCausalLM(cfg).eval()
    ids = torch.randint(0, 50, (3, 10))
    labels = ids.clone()
    labels[:, :4] = -100          # prompt
    labels[2, 8:] = -100          # padding of a shorter row
    out = model(input_ids=ids, labels=labels)
    assert torch.allclose(sft_loss(out.logits, labels), out.loss, atol=1e-5)


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    m = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(x, m) == 2.0
    assert torch.equal(masked_mean(x, m, dim=1), torch.tensor([1.5, 3.0]))
