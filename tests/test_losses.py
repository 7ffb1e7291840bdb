"""Losses: hand-computed cases and equality with the ecosystem's own numbers."""
import math

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from igpt_lib.losses import masked_mean, ranking_loss, sft_loss


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


def _naive_ranking_loss(rewards, ranks, mask):
    """The slow reference: expand every prompt into its ordered pairs, one by one."""
    per_prompt = []
    for r, k, m in zip(rewards.tolist(), ranks.tolist(), mask.tolist()):
        terms = [-math.log(1 / (1 + math.exp(-(r[i] - r[j]))))
                 for i in range(len(r)) for j in range(len(r))
                 if m[i] and m[j] and k[i] < k[j]]
        if terms:
            per_prompt.append(sum(terms) / len(terms))
    return sum(per_prompt) / len(per_prompt)


def test_ranking_loss_hand_case_k3():
    # ranks 0 < 1 < 2 and rewards 2, 1, 0: pairs (0,1) and (1,2) differ by 1, (0,2) by 2.
    rewards = torch.tensor([[2.0, 1.0, 0.0]])
    ranks = torch.tensor([[0, 1, 2]])
    sp = lambda x: math.log(1 + math.exp(-x))  # noqa: E731  −log σ(x)
    expected = (2 * sp(1.0) + sp(2.0)) / 3   # C(3,2) = 3 pairs
    assert math.isclose(ranking_loss(rewards, ranks).item(), expected, rel_tol=1e-6)


def test_ranking_loss_equals_naive_pair_expansion_with_ties_and_padding():
    torch.manual_seed(0)
    rewards = torch.randn(6, 9)
    ranks = torch.randint(0, 4, (6, 9))                # many ties
    mask = torch.rand(6, 9) > 0.3
    mask[0] = False                                    # a prompt with no response at all
    ranks[1] = 2                                       # a prompt with only ties
    expected = _naive_ranking_loss(rewards, ranks, mask)
    assert math.isclose(ranking_loss(rewards, ranks, mask).item(), expected, rel_tol=1e-5)


def test_ranking_loss_ignores_padding_values():
    rewards = torch.tensor([[1.0, 0.0, 1e6]])
    ranks = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[True, True, False]])
    assert math.isclose(ranking_loss(rewards, ranks, mask).item(), math.log(1 + math.exp(-1.0)), rel_tol=1e-6)


def test_ranking_loss_k2_equals_trl_reward_trainer(tmp_path):
    """For K = 2 our loss is TRL RewardTrainer's pairwise loss on the same model and pairs."""
    import trl
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPTNeoXForSequenceClassification, PreTrainedTokenizerFast
    words = ["<pad>", "<eos>", "<unk>"] + "q a good bad fine ok no yes".split()
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=1, pad_token_id=0)
    model = GPTNeoXForSequenceClassification(cfg)
    pairs = Dataset.from_list([{"prompt": "q a", "chosen": " good yes", "rejected": " bad"},
                               {"prompt": "q", "chosen": " fine", "rejected": " no no ok"}])
    args = trl.RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, bf16=False,
                            report_to="none", use_cpu=True, activation_checkpointing=False,
                            center_rewards_coefficient=None)
    trainer = trl.RewardTrainer(model=model, args=args, train_dataset=pairs, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    model.eval()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, dict(batch))
        chosen, rejected = model(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"]).logits.squeeze(-1).chunk(2)
    ours = ranking_loss(torch.stack([chosen, rejected], dim=1), torch.tensor([[0, 1], [0, 1]]))
    assert torch.allclose(ours, trl_loss, atol=1e-6)
