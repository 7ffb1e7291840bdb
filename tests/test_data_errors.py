"""Bad input: one DataError (a ValueError) whose one-line message names file, line and field."""
import json

import pytest

from igpt_lib import data as D

DEMO = {"prompt": "Q : add 2 and 3 A :", "response": "5", "user_id": "u1"}
PROMPT = {"prompt": "Q : add 2 and 3 A :", "user_id": "u1"}
COMP = {"prompt": "Q : add 2 and 3 A :", "responses": ["5", "7", "6"], "ranks": [0, 1, 1],
        "labeler_id": "L01", "user_id": "u1"}


def _line(row, **change):
    return json.dumps({**row, **change})


def _without(row, field):
    return json.dumps({k: v for k, v in row.items() if k != field})


GOOD_D, GOOD_P, GOOD_C = json.dumps(DEMO), json.dumps(PROMPT), json.dumps(COMP)
CASES = [  # (id, loader, second line of the file, message pattern): the first line is always good
    ("demo missing response", "demonstrations", _without(DEMO, "response"), r":2: field 'response' is missing"),
    ("demo missing prompt", "demonstrations", _without(DEMO, "prompt"), r":2: field 'prompt' is missing"),
    ("demo missing user_id", "demonstrations", _without(DEMO, "user_id"), r":2: field 'user_id' is missing"),
    ("demo response not str", "demonstrations", _line(DEMO, response=5), r":2: field 'response' should be str, got int"),
    ("demo empty response", "demonstrations", _line(DEMO, response="  "), r":2: field 'response' is empty"),
    ("demo empty prompt", "demonstrations", _line(DEMO, prompt=""), r":2: field 'prompt' is empty"),
    ("prompt empty user_id", "prompts", _line(PROMPT, user_id=""), r":2: field 'user_id' is empty"),
    ("prompt is a list", "prompts", _line(PROMPT, prompt=["a"]), r":2: field 'prompt' should be str, got list"),
    ("prompt missing", "prompts", _without(PROMPT, "prompt"), r":2: field 'prompt' is missing"),
    ("comp one response", "comparisons", _line(COMP, responses=["5"], ranks=[0]), r":2: field 'responses' needs at least 2"),
    ("comp ranks length", "comparisons", _line(COMP, ranks=[0, 1]), r":2: field 'ranks' has 2 entries for 3 responses"),
    ("comp ranks gap", "comparisons", _line(COMP, ranks=[0, 2, 2]), r":2: field 'ranks' \[0, 2, 2\] is not a ranking"),
    ("comp ranks not from 0", "comparisons", _line(COMP, ranks=[1, 2, 3]), r":2: field 'ranks' .* is not a ranking"),
    ("comp ranks negative", "comparisons", _line(COMP, ranks=[-1, 0, 1]), r":2: field 'ranks' .* is not a ranking"),
    ("comp ranks floats", "comparisons", _line(COMP, ranks=[0.0, 1, 1]), r":2: field 'ranks' should hold integers"),
    ("comp ranks bools", "comparisons", _line(COMP, ranks=[False, True, True]), r":2: field 'ranks' should hold integers"),
    ("comp response not str", "comparisons", _line(COMP, responses=["5", None, "6"]), r":2: field 'responses\[1\]' should be str"),
    ("comp responses a string", "comparisons", _line(COMP, responses="5 7 6"), r":2: field 'responses' should be list"),
    ("comp missing labeler", "comparisons", _without(COMP, "labeler_id"), r":2: field 'labeler_id' is missing"),
    ("comp likert out of range", "comparisons", _line(COMP, likert=[7, 0, 3]), r":2: field 'likert' should hold integers 1-7"),
    ("comp likert length", "comparisons", _line(COMP, likert=[7]), r":2: field 'likert' should be a list with one entry"),
    ("comp flags length", "comparisons", _line(COMP, flags=[{}]), r":2: field 'flags' should be a list with one entry"),
    ("NaN score", "comparisons", GOOD_C[:-1] + ', "scores": [0.5, NaN, 1.0]}', r":2: field 'scores\[1\]' is NaN or infinite"),
    ("infinite nested", "prompts", GOOD_P[:-1] + ', "meta": {"a": Infinity}}', r":2: field 'meta.a' is NaN or infinite"),
    ("invalid JSON", "prompts", '{"prompt": "x", "user_id": ', r":2: invalid JSON"),
    ("not an object", "prompts", '["prompt", "user_id"]', r":2: expected a JSON object, got list"),
    ("line too long", "demonstrations", _line(DEMO, response="y " * 600_000), r":2: line of [\d,]+ bytes is over the limit"),
]
LOADERS = {"demonstrations": D.load_demonstrations, "prompts": D.load_prompts,
           "comparisons": D.load_comparison_rows}
GOOD = {"demonstrations": GOOD_D, "prompts": GOOD_P, "comparisons": GOOD_C}


@pytest.mark.parametrize("name,schema,bad,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_row_is_one_clear_error(tmp_path, name, schema, bad, pattern):
    path = tmp_path / f"{schema}.jsonl"
    path.write_text(GOOD[schema] + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(D.DataError, match=str(path).replace(".", r"\.") + pattern) as err:
        LOADERS[schema](path)
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(GOOD_P.encode() + b"\n" + b'{"prompt": "caf\xe9", "user_id": "u"}\n')
    with pytest.raises(D.DataError, match=r"prompts\.jsonl:2: not UTF-8"):
        D.load_prompts(path)


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "demos.jsonl"
    path.write_text(GOOD_D + "\n\n\n" + _without(DEMO, "response") + "\n", encoding="utf-8")
    with pytest.raises(D.DataError, match=r"demos\.jsonl:4: field 'response' is missing"):
        D.load_demonstrations(path)


def test_the_datasets_loader_names_the_line_of_our_comparisons(tmp_path):
    path = tmp_path / "comparisons.jsonl"
    path.write_text(GOOD_C + "\n\n" + _line(COMP, ranks=[0, 0, 2]) + "\n", encoding="utf-8")
    with pytest.raises(D.DataError, match=r"comparisons\.jsonl:3: field 'ranks'"):
        D.load_comparisons(path)


def test_an_empty_sampled_response_is_a_valid_comparison(tmp_path):
    path = tmp_path / "comparisons.jsonl"
    path.write_text(_line(COMP, responses=["5", "", "6"]) + "\n", encoding="utf-8")
    assert D.load_comparison_rows(path)[0]["responses"][1] == ""


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "out.jsonl"
    D.write_jsonl(path, [DEMO])
    with pytest.raises(TypeError):
        D.write_jsonl(path, [DEMO, {"bad": object()}])
    assert D.load_demonstrations(path) == [DEMO] and len(list(tmp_path.iterdir())) == 1
