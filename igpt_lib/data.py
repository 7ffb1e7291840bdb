"""One schema for every stage, loaders that check it, and atomic writers.

Schemas (fields beyond these are kept; `data/README.md` describes each):
  demonstrations: prompt, response, user_id        (+ prompt_id, task, kind, meta, labeler_id)
  prompts:        prompt, user_id                  (+ prompt_id, task, kind, meta)
  comparisons:    prompt, responses, ranks, labeler_id, user_id (+ likert, flags, task, meta)
`ranks` has one entry per response, 0 = best, equal ranks = tie.
Bad input raises `DataError` with one line naming the file, the line and the field.
Loaders: load_demonstrations / load_prompts / load_comparison_rows (our JSONL → checked rows);
load_comparisons (ours, OpenAssistant, HH-RLHF, file or hub name → datasets.Dataset);
load_demonstrations_any (ours or Dolly-15k). Converters live in adapters.py.
"""
import json
import os
import tempfile
from pathlib import Path

SCHEMAS = {
    "demonstrations": {"prompt": str, "response": str, "user_id": str},
    "prompts": {"prompt": str, "user_id": str},
    "comparisons": {"prompt": str, "responses": list, "ranks": list, "labeler_id": str, "user_id": str},
}


class DataError(ValueError):
    """A row of an input file breaks the schema; the message names file, line and field."""


def read_jsonl(path):
    """Rows of a JSONL file; blank lines are skipped, anything else must be a JSON object."""
    rows = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def validate(rows, schema, path="<rows>"):
    fields = SCHEMAS[schema]
    for n, row in enumerate(rows, start=1):
        for name, kind in fields.items():
            if name not in row:
                raise DataError(f"{path}:{n}: field {name!r} is missing ({schema} schema)")
            if not isinstance(row[name], kind):
                raise DataError(f"{path}:{n}: field {name!r} should be {kind.__name__}, "
                                f"got {type(row[name]).__name__}")
        if schema == "comparisons":
            if len(row["responses"]) < 2:
                raise DataError(f"{path}:{n}: field 'responses' needs at least 2 responses")
            if len(row["ranks"]) != len(row["responses"]):
                raise DataError(f"{path}:{n}: field 'ranks' has {len(row['ranks'])} entries "
                                f"for {len(row['responses'])} responses")
    return rows


def _loader(schema):
    def load(path):
        return validate(read_jsonl(path), schema, path)
    load.__name__ = f"load_{schema}"
    load.__doc__ = f"Rows of a {schema} JSONL file, checked against the {schema} schema."
    return load


load_demonstrations = _loader("demonstrations")
load_prompts = _loader("prompts")
load_comparison_rows = _loader("comparisons")


def _atomic_write(path, text):
    """Write to a temp file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the data from other users
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text):
    _atomic_write(path, text)


def write_jsonl(path, rows):
    _atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_json(path, obj):
    _atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def response_separator(prompt):
    """What goes between a prompt and its response: nothing if the prompt ends in whitespace
    (hub templates end with a newline), else a space (the world's `... A :`)."""
    return "" if prompt[-1:].isspace() else " "


def _rows_of(source):
    """Rows of a local JSONL file, or of a hub dataset's train split."""
    if Path(source).exists():
        return read_jsonl(source)
    if Path(source).suffix in (".jsonl", ".json"):  # a path, mistyped: do not ask the hub
        raise DataError(f"{source}: no such file")
    import datasets  # only for hub names: no network is touched for local files
    return list(datasets.load_dataset(source, split="train"))


def load_comparisons(source):
    """Comparisons as a `datasets.Dataset` with at least prompt, responses, ranks (0 = best).

    `source`: our JSONL, OpenAssistant message trees (one row per group of ≥ 2 ranked sibling
    replies) or flat OpenAssistant messages, HH-RLHF chosen/rejected (K = 2), a local file or
    a hub name. Bad rows raise DataError naming the file, line and field."""
    from datasets import Dataset
    from .adapters import to_comparisons
    rows = validate(to_comparisons(_rows_of(source), str(source)), "comparisons", source)
    return Dataset.from_list(rows)


def load_demonstrations_any(source):
    """Demonstrations from our JSONL, a Dolly-schema JSONL, or a hub dataset name (train split)."""
    rows = _rows_of(source)
    if rows and "instruction" in rows[0]:
        from .adapters import from_dolly
        return from_dolly(rows, source)
    return validate(rows, "demonstrations", source)


def append_jsonl(path, row):
    """Append one row and force it to disk (flush + fsync): a kernel restart loses nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
