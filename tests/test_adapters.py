"""Comparison loaders: our JSONL, OpenAssistant trees and messages, HH-RLHF; real slices
from ../shared/data where present, fixtures of our own always."""
import json

import pytest

from igpt_lib import data as D
from igpt_lib.adapters import oa_messages_to_trees

from conftest import REPO, SHARED_DATA

OA_TREE = {"message_tree_id": "t1", "prompt": {
    "message_id": "m0", "role": "prompter", "text": "Hi?", "replies": [
        {"message_id": "m1", "parent_id": "m0", "role": "assistant", "text": "Hello!", "rank": 1, "replies": [
            {"message_id": "m3", "parent_id": "m1", "role": "prompter", "text": "More?", "replies": [
                {"message_id": "m4", "parent_id": "m3", "role": "assistant", "text": "Sure.", "rank": 0},
                {"message_id": "m5", "parent_id": "m3", "role": "assistant", "text": "No.", "rank": 1}]}]},
        {"message_id": "m2", "parent_id": "m0", "role": "assistant", "text": "Hey.", "rank": 0, "replies": []},
        {"message_id": "m6", "parent_id": "m0", "role": "assistant", "text": "gone", "rank": 2, "deleted": True},
        {"message_id": "m7", "parent_id": "m0", "role": "assistant", "text": "Yo", "rank": 3, "replies": []}]}}
HH_ROW = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: A good one.",
          "rejected": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No."}


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_openassistant_tree_fixture(tmp_path):
    ds = D.load_comparisons(_write(tmp_path, "oa.jsonl", [OA_TREE]))
    assert len(ds) == 2
    first = ds[0]
    assert first["prompt"] == "\n\nHuman: Hi?\n\nAssistant:"
    assert first["responses"] == ["Hello!", "Hey.", "Yo"] and first["ranks"] == [1, 0, 2]  # deleted dropped, dense
    second = ds[1]
    assert second["prompt"].endswith("\n\nHuman: More?\n\nAssistant:") and "Hello!" in second["prompt"]
    assert second["ranks"] == [0, 1] and second["user_id"] == "oa-t1"


def test_openassistant_flat_messages_build_the_same_rows(tmp_path):
    flat = []

    def walk(m):
        flat.append({k: v for k, v in m.items() if k != "replies"} | {"message_tree_id": "t1"})
        for r in m.get("replies", []):
            walk(r)
    walk(OA_TREE["prompt"])
    assert len(oa_messages_to_trees(flat)) == 1
    a = D.load_comparisons(_write(tmp_path, "tree.jsonl", [OA_TREE]))
    b = D.load_comparisons(_write(tmp_path, "flat.jsonl", flat))
    assert [r["responses"] for r in a] == [r["responses"] for r in b]


def test_hh_fixture_and_errors(tmp_path):
    ds = D.load_comparisons(_write(tmp_path, "hh.jsonl", [HH_ROW]))
    row = ds[0]
    assert row["prompt"] == "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant:"
    assert row["responses"] == ["A good one.", "No."] and row["ranks"] == [0, 1]
    bad = _write(tmp_path, "bad.jsonl", [HH_ROW, {"chosen": "no turns", "rejected": "x"}])
    with pytest.raises(D.DataError, match=r"bad\.jsonl:2: field 'chosen'"):
        D.load_comparisons(bad)
    with pytest.raises(D.DataError, match=r"unknown comparisons schema"):
        D.load_comparisons(_write(tmp_path, "odd.jsonl", [{"text": "x"}]))


def test_our_comparisons_load_as_a_dataset_with_meta():
    ds = D.load_comparisons(REPO / "data" / "comparisons.val.jsonl")
    assert {"prompt", "responses", "ranks", "meta", "task"} <= set(ds.column_names)
    from igpt_lib.world import gold_score
    row = ds[0]
    assert -1 <= gold_score(row, row["responses"][0]) <= 1


needs_shared = pytest.mark.skipif(not SHARED_DATA.exists(),
                                  reason=f"real data slices not present at {SHARED_DATA}")


@needs_shared
def test_real_openassistant_slice():
    ds = D.load_comparisons(SHARED_DATA / "openassistant" / "en_100_tree.jsonl")
    assert len(ds) >= 150  # SOURCES.md: 212 ranked groups, K = 2..9
    ks = [len(r) for r in ds["responses"]]
    assert min(ks) >= 2 and max(ks) <= 9
    for ranks in ds["ranks"]:
        assert min(ranks) == 0 and sorted(set(ranks)) == list(range(max(ranks) + 1))
    assert all(p.endswith("\n\nAssistant:") for p in ds["prompt"])


@needs_shared
@pytest.mark.parametrize("name", ["helpful-base_test.first100.jsonl", "harmless-base_test.first100.jsonl"])
def test_real_hh_slices(name):
    ds = D.load_comparisons(SHARED_DATA / "hh-rlhf" / name)
    assert len(ds) == 100
    assert all(r == [0, 1] for r in ds["ranks"])
    assert all(p.startswith("\n\nHuman:") and p.endswith("\n\nAssistant:") for p in ds["prompt"])


def test_a_missing_local_file_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(D.DataError, match=r"missing\.jsonl: no such file"):
        D.load_comparisons(tmp_path / "missing.jsonl")
