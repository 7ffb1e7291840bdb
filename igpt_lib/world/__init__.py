"""The offline world: tasks, users and prompts, labelers, corpus, tokenizer, base models.

Lesson: notebooks/00_overview_and_world.ipynb.
"""
from .gold import gold_score, judge
from .tasks import TASKS

__all__ = ["TASKS", "gold_score", "judge"]
