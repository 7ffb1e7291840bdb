"""memory.plan: exact parameter counts, the presets fit their cards, advice when they do not,
and the estimate against a measured peak (CPU, fp32, Pythia-70M's architecture)."""
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from igpt_lib.config import get_preset
from igpt_lib.memory import model_config, plan, shape

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("size,params", [("70m", 70_426_624), ("1b", 1_011_781_632),
                                         ("6.9b", 6_857_302_016), ("12b", 11_846_072_320)])
def test_parameter_counts_equal_pythias_published_ones(size, params):
    # Biderman et al. 2023, Table 1 (total parameters, embeddings included)
    assert shape(model_config(f"EleutherAI/pythia-{size}-deduped")).params == params


def test_colab_t4_fits_in_15_gib_and_names_every_phase():
    p = plan("colab-t4")
    assert p.total_gib <= 15 and p.fits and p.advice == []
    assert set(p.phases) == {"sft", "rm", "ppo_rollout", "ppo_update", "baseline", "judge"}
    assert p.total_gib == max(p.phases.values())
    assert {m.role for m in p.models} >= {"policy", "reward_model", "value_model", "baseline", "gold_judge"}
    assert "reference" not in {m.role for m in p.models}  # LoRA: the reference is the shared base
    assert "Total (largest phase)" in p.table()


def test_a_card_too_small_gets_advice_for_its_largest_phase():
    preset = get_preset("colab-t4")
    small = replace(preset, hub=replace(preset.hub, gpu_gib=6.0))
    p = plan(small)
    assert not p.fits
    assert p.advice[0].startswith("phase 'baseline'")
    assert any("baseline_bits=4" in tip for tip in p.advice)
    four_bit = plan(replace(preset, hub=replace(preset.hub, baseline_bits=4)))
    assert four_bit.phases["baseline"] < plan(preset).phases["baseline"] - 2.5  # ~half the weights


def test_full_fine_tuning_counts_a_reference_copy_and_more_training_state():
    preset = get_preset("colab-t4")
    full = plan(replace(preset, ppo=replace(preset.ppo, lora_r=0)))
    assert "reference" in {m.role for m in full.models}
    assert full.phases["ppo_update"] > plan(preset).phases["ppo_update"] + 4  # 16-20 B per 405M params


def test_offline_presets_have_no_plan():
    with pytest.raises(ValueError, match="offline-world preset"):
        plan("cpu")


def test_a_local_model_folder_is_read_with_autoconfig(tmp_path):
    from transformers import GPTNeoXConfig
    GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  vocab_size=100).save_pretrained(tmp_path)
    shp = shape(model_config(str(tmp_path)))
    assert shp.layers == 2 and shp.vocab == 100 and shp.params > 0


def test_readme_presets_table_is_the_plans(memory_check):
    mc, _ = memory_check
    readme = (BENCH.parent / "README.md").read_text()
    assert mc.presets_table() in readme  # regenerate with: python bench/memory_check.py


@pytest.fixture(scope="module")
def memory_check(tmp_path_factory):
    """bench/memory_check.py and a random model of Pythia-70M's architecture saved for it."""
    sys.path.insert(0, str(BENCH))
    try:
        import memory_check as mc
    finally:
        sys.path.remove(str(BENCH))
    folder = tmp_path_factory.mktemp("pythia70m_random")
    mc.save_random_model(folder)
    return mc, folder


@pytest.mark.parametrize("scenario", ["full step, gradient checkpointing", "LoRA r=16 step, 8-bit base"])
def test_estimate_is_within_25_percent_of_the_measured_peak(memory_check, scenario):
    mc, folder = memory_check
    args = mc.SCENARIOS[scenario]
    ratio = mc.estimated(args) / mc.measure(args, folder)
    assert 0.75 <= ratio <= 1.25, ratio


def test_the_judge_is_planned_in_float32_with_its_forward_pass():
    """Public reward models ship float32 and hub.judge_scores loads them as stored; its batch of
    JUDGE_BATCH × JUDGE_LENGTH tokens adds one layer's transient (fitted on a GPU: docs/memory.md)."""
    from igpt_lib.memory import GIB, JUDGE_BATCH, JUDGE_LENGTH
    p = plan("colab-t4")
    judge = next(m for m in p.models if m.role == "gold_judge")
    assert judge.weights_gib == pytest.approx(judge.params * 4 / GIB)
    shp = shape(model_config(get_preset("colab-t4").hub.gold_judge), head="classifier")
    assert shp.relative  # DeBERTa: three attention-score matrices
    transient = JUDGE_BATCH * JUDGE_LENGTH * (24 * shp.hidden + 3 * shp.heads * JUDGE_LENGTH * 2) * 4 / 2
    assert judge.activations_gib == pytest.approx(transient / GIB)


def test_gpu_time_estimates_every_phase_and_readme_shows_it():
    """igpt_lib.gpu_time: minutes per phase on each preset's card (an estimate, marked as such in
    README); capping the RM's sets is what keeps colab-t4's RM phase short."""
    from igpt_lib import gpu_time
    for name in ("colab-t4", "a100"):
        minutes = gpu_time.estimate(name)
        assert set(minutes) == {"sft", "rm", "ppo", "eval"} and all(v > 0 for v in minutes.values())
    t4 = get_preset("colab-t4")
    uncapped = gpu_time.estimate(replace(t4, hub=replace(t4.hub, rm_max_sets=None)))
    assert 4.5 < uncapped["rm"] / gpu_time.estimate(t4)["rm"] < 6  # README: "about five times longer"
    assert gpu_time.table() in (BENCH.parent / "README.md").read_text()  # python bench/memory_check.py --tables
