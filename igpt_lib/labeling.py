"""A labeling interface (ipywidgets): be the paper's labeler for a few prompts (§3.4).

For each prompt and its K responses, give every response a Likert score (1–7), tick the
metadata flags, and rank them (0 = best; equal ranks = a tie). Each submission is appended to
a comparisons JSONL in the kit's schema and fsync'ed, so a kernel restart loses nothing; on
restart the session resumes at the first prompt not yet in the file. The reward-model lesson
can then train on your own labels. Lesson: notebooks/02_comparisons.ipynb.
"""
import html
from pathlib import Path

import ipywidgets as W

from .data import append_jsonl, read_jsonl, recover_torn_tail

FLAGS = ("fails_constraint", "hallucination", "toxic")
KEEP = ("prompt_id", "prompt", "user_id", "task", "kind", "meta", "policies")


class LabelingSession:
    """Label `items` (rows with prompt, responses, prompt_id) into the JSONL at `path`."""

    def __init__(self, items, path, labeler_id="student"):
        self.items, self.path, self.labeler_id = list(items), Path(path), labeler_id
        torn = recover_torn_tail(self.path)  # a power cut mid-append: keep the good labels
        done = {r.get("prompt_id") for r in read_jsonl(self.path)} if self.path.exists() else set()
        self.index = next((i for i, it in enumerate(self.items) if it["prompt_id"] not in done),
                          len(self.items))
        self.status = W.HTML()
        if torn is not None:
            import warnings
            message = (f"{self.path}: the last line was cut off mid-write ({len(torn)} characters, kept in "
                       f"{self.path.name}.torn); the {len(done)} complete labels are kept")
            warnings.warn(message, stacklevel=2)
            self.status.value = html.escape(message)
        self.body = W.VBox()
        submit, skip = W.Button(description="Submit", button_style="success"), W.Button(description="Skip")
        submit.on_click(self.submit)
        skip.on_click(self.skip)
        self.widget = W.VBox([self.body, W.HBox([submit, skip]), self.status])
        self._show()

    def _show(self):
        if self.index >= len(self.items):
            self.body.children = [W.HTML("<b>All prompts labeled.</b>")]
            self.rows = []
            return
        item = self.items[self.index]
        k = len(item["responses"])
        self.rows = [{"likert": W.Dropdown(options=list(range(1, 8)), value=4, description="Likert",
                                           layout=W.Layout(width="140px")),
                      "rank": W.Dropdown(options=list(range(k)), value=i, description="rank",
                                         layout=W.Layout(width="130px")),
                      **{f: W.Checkbox(value=False, description=f, indent=False,
                                       layout=W.Layout(width="150px")) for f in FLAGS}}
                     for i in range(k)]
        header = W.HTML(f"<b>{self.index + 1}/{len(self.items)}</b> <code>{html.escape(item['prompt'])}</code>")
        lines = [W.HBox([W.HTML(f"<code>{html.escape(y) or '(empty)'}</code>",
                                layout=W.Layout(width="320px")),
                         r["likert"], r["rank"], *[r[f] for f in FLAGS]])
                 for y, r in zip(item["responses"], self.rows)]
        self.body.children = [header, *lines]

    def record(self):
        """The current form as a comparisons row; raises ValueError on ranks with gaps."""
        item = self.items[self.index]
        ranks = [r["rank"].value for r in self.rows]
        if sorted(set(ranks)) != list(range(max(ranks) + 1)):
            raise ValueError(f"ranks {ranks} skip a value: use 0 = best, 1, 2, ... (equal = tie)")
        return {**{k: item[k] for k in KEEP if k in item}, "responses": list(item["responses"]),
                "ranks": ranks, "likert": [r["likert"].value for r in self.rows],
                "flags": [{f: r[f].value for f in FLAGS} for r in self.rows],
                "labeler_id": self.labeler_id, "user_id": item.get("user_id", "student")}

    def submit(self, _button=None):
        try:
            row = self.record()
        except ValueError as e:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
            return None
        append_jsonl(self.path, row)
        self.status.value = f"saved to {html.escape(str(self.path))}"
        self.index += 1
        self._show()
        return row

    def skip(self, _button=None):
        self.index += 1
        self._show()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
