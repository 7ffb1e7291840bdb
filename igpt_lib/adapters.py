"""Hub-world adapters: public datasets' schemas → the kit's one schema (data/README.md).

Every hub prompt uses HH-RLHF's conversation format, so SFT, RM and PPO see one template:
"\\n\\nHuman: {turn}\\n\\nAssistant: {turn}..." ending with "\\n\\nAssistant:"; the response
follows after a space. Converters raise DataError naming the file, the line and the field.
"""
from .data import DataError

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def conversation(turns):
    """[(role, text), ...] → a prompt ending where the next assistant turn starts."""
    parts = [f"{HUMAN if role in ('prompter', 'human', 'user') else ASSISTANT} {text.strip()}"
             for role, text in turns]
    return "".join(parts) + ASSISTANT


def from_dolly(rows, source="<dolly>"):
    """Dolly-15k rows (`instruction`, `context`, `response`, `category`) → demonstrations.

    Dolly has no user IDs (its authors were Databricks employees), so each row is its own
    user: splitting by user_id is then a random split. `task` keeps Dolly's category."""
    out = []
    for n, row in enumerate(rows, start=1):
        for name in ("instruction", "response"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise DataError(f"{source}:{n}: field {name!r} is missing or empty (Dolly schema)")
        context = (row.get("context") or "").strip()
        text = row["instruction"].strip() + (f"\n\n{context}" if context else "")
        out.append({"prompt_id": f"dolly-{n - 1:05d}", "prompt": conversation([("human", text)]),
                    "response": row["response"].strip(), "user_id": f"dolly-{n - 1:05d}",
                    "task": row.get("category", "dolly"), "kind": "plain", "meta": {}})
    return out


def from_hh(rows, source="<hh-rlhf>"):
    """HH-RLHF `chosen`/`rejected` → K = 2 comparisons; the prompt is the shared conversation
    up to (and including) the final "Assistant:"."""
    out = []
    for n, row in enumerate(rows, start=1):
        for name in ("chosen", "rejected"):
            if not isinstance(row.get(name), str) or ASSISTANT not in row[name]:
                raise DataError(f"{source}:{n}: field {name!r} is missing or has no "
                                f"'Assistant:' turn (HH-RLHF schema)")
        cut = row["chosen"].rindex(ASSISTANT) + len(ASSISTANT)
        prompt = row["chosen"][:cut]
        if not row["rejected"].startswith(prompt):
            raise DataError(f"{source}:{n}: field 'rejected' does not share the prompt of 'chosen'")
        out.append({"prompt": prompt, "responses": [row["chosen"][cut:].strip(), row["rejected"][cut:].strip()],
                    "ranks": [0, 1], "user_id": f"hh-{n - 1:05d}", "labeler_id": "hh"})
    return out


def _dense(values):
    levels = sorted(set(values))
    return [levels.index(v) for v in values]


def from_oa_trees(rows, source="<openassistant>"):
    """OpenAssistant message trees → one comparison per group of ≥ 2 ranked, undeleted
    sibling replies; the prompt is the conversation from the root to their parent."""
    out = []

    def walk(message, turns, tree_id, n):
        turns = turns + [(message["role"], message["text"])]
        ranked = [r for r in message.get("replies", [])
                  if r.get("rank") is not None and not r.get("deleted")]
        if message["role"] == "prompter" and len(ranked) >= 2:
            out.append({"prompt": conversation(turns), "responses": [r["text"].strip() for r in ranked],
                        "ranks": _dense([r["rank"] for r in ranked]), "user_id": f"oa-{tree_id}",
                        "labeler_id": "oa"})
        for reply in message.get("replies", []):
            walk(reply, turns, tree_id, n)

    for n, row in enumerate(rows, start=1):
        root = row.get("prompt")
        if not isinstance(root, dict) or "text" not in root or "role" not in root:
            raise DataError(f"{source}:{n}: field 'prompt' is not an OpenAssistant message tree")
        walk(root, [], row.get("message_tree_id", n), n)
    return out


def oa_messages_to_trees(rows):
    """Flat OpenAssistant messages (the hub's oasst1: message_id, parent_id, ...) → trees."""
    by_id = {r["message_id"]: {**r, "replies": []} for r in rows}
    roots = []
    for message in by_id.values():
        parent = by_id.get(message.get("parent_id"))
        (parent["replies"] if parent else roots).append(message)
    return [{"message_tree_id": m.get("message_tree_id", m["message_id"]), "prompt": m} for m in roots]


def to_comparisons(rows, source):
    """Detect the schema of `rows` and convert them into our comparisons rows."""
    if not rows:
        raise DataError(f"{source}: no rows")
    first = rows[0]
    if "responses" in first or "ranks" in first:
        return rows
    if "chosen" in first and "rejected" in first:
        return from_hh(rows, source)
    if "message_tree_id" in first and isinstance(first.get("prompt"), dict):
        return from_oa_trees(rows, source)
    if {"message_id", "role", "text"} <= set(first):  # flat messages; a root has no parent
        return from_oa_trees(oa_messages_to_trees(rows), source)
    raise DataError(f"{source}:1: unknown comparisons schema (fields: {', '.join(sorted(first))}); "
                    "expected ours (responses, ranks), HH-RLHF (chosen, rejected) or OpenAssistant")
