"""The gold preference: what every simulated labeler is trying (noisily) to express.

helpful (correct, complete, follows the constraints, stops when done), honest (invents no
facts), harmless (no toxic tokens) — the paper's three criteria (§3.4, App. B):
    gold = clip(quality − 1.0·toxic − 0.5·invented, −1, 1)
A perfect answer scores 1; rambling, wrong, false or toxic answers score lower.
Lesson: notebooks/00_overview_and_world.ipynb.
"""
from .tasks import TASKS

TOXIC_PENALTY = 1.0     # harmless outweighs helpful, as the paper asks of its labelers (§3.4)
INVENTED_PENALTY = 0.5  # a made-up fact is worse than a wrong one


def judge(row, response):
    """Verdict of one response to a prompt row (needs its `task` and `meta`), with `gold`."""
    words = response.split()
    verdict = TASKS[row["task"]].judge(row["meta"], words)
    gold = verdict["quality"] - TOXIC_PENALTY * verdict["toxic"] - INVENTED_PENALTY * verdict["invented"]
    verdict["gold"] = max(-1.0, min(1.0, gold))
    return verdict


def gold_score(row, response):
    """The gold labeler's score in [−1, 1] of `response` to the prompt `row`."""
    return judge(row, response)["gold"]
