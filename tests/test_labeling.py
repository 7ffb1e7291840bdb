"""The labeling widget, driven headlessly: submissions reach the file and survive a restart."""
import subprocess
import sys

from igpt_lib import data as D
from igpt_lib.labeling import LabelingSession

ITEMS = [{"prompt_id": f"p{i}", "prompt": f"Q : add {i} and 1 A :", "user_id": "u1", "task": "add",
          "meta": {"a": i, "b": 1}, "responses": [str(i + 1), "7", "idiot"]} for i in range(3)]


def test_submit_appends_a_schema_row(tmp_path):
    path = tmp_path / "mine.jsonl"
    s = LabelingSession(ITEMS, path, labeler_id="me")
    s.rows[0]["likert"].value = 7
    s.rows[2]["toxic"].value = True
    s.rows[0]["rank"].value, s.rows[1]["rank"].value, s.rows[2]["rank"].value = 0, 1, 1
    row = s.submit()
    assert row["ranks"] == [0, 1, 1] and row["likert"][0] == 7 and row["flags"][2]["toxic"]
    saved = D.load_comparison_rows(path)
    assert saved == [row] and saved[0]["labeler_id"] == "me" and saved[0]["meta"] == {"a": 0, "b": 1}
    assert s.index == 1 and s.rows  # the next prompt is shown


def test_ranks_with_gaps_are_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "mine.jsonl"
    s = LabelingSession(ITEMS, path)
    s.rows[0]["rank"].value, s.rows[1]["rank"].value, s.rows[2]["rank"].value = 0, 2, 2
    assert s.submit() is None and "skip a value" in s.status.value
    assert not path.exists() and s.index == 0


def test_a_killed_kernel_loses_nothing_and_the_session_resumes(tmp_path):
    path = tmp_path / "mine.jsonl"
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "from tests.test_labeling import ITEMS\n"
            "from igpt_lib.labeling import LabelingSession\n"
            "s = LabelingSession(ITEMS, %r)\n"
            "s.submit()\n"
            "os.kill(os.getpid(), 9)\n") % (str(__import__('pathlib').Path(__file__).parents[1]), str(path))
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -9  # SIGKILL: no clean exit, no flush at exit
    assert len(D.read_jsonl(path)) == 1
    again = LabelingSession(ITEMS, path)
    assert again.index == 1  # resumes at the first unlabeled prompt
    again.submit()
    again.skip()
    assert [r["prompt_id"] for r in D.read_jsonl(path)] == ["p0", "p1"]


def test_a_torn_last_line_is_reported_and_the_good_labels_kept(tmp_path):
    import pytest
    path = tmp_path / "mine.jsonl"
    s = LabelingSession(ITEMS, path)
    s.submit()
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"prompt_id": "p1", "prompt": "Q : add 1 an')   # the power went out here
    with pytest.warns(UserWarning, match="cut off mid-write"):
        again = LabelingSession(ITEMS, path)
    assert again.index == 1 and "cut off" in again.status.value
    assert [r["prompt_id"] for r in D.load_comparison_rows(path)] == ["p0"]
    assert (tmp_path / "mine.jsonl.torn").read_text().startswith('{"prompt_id": "p1"')
    again.submit()  # appends on a clean line
    assert [r["prompt_id"] for r in D.load_comparison_rows(path)] == ["p0", "p1"]


def test_a_bad_line_in_the_middle_is_an_error_not_a_torn_write(tmp_path):
    import pytest
    path = tmp_path / "mine.jsonl"
    path.write_text('{"broken": \n' + '{"prompt_id": "p0"}\n', encoding="utf-8")
    assert D.recover_torn_tail(path) is None
    with pytest.raises(D.DataError, match=r"mine\.jsonl:1: invalid JSON"):
        LabelingSession(ITEMS, path)
