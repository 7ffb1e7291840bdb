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
import math
import os
import tempfile
import zlib
from pathlib import Path

SCHEMAS = {
    "demonstrations": {"prompt": str, "response": str, "user_id": str},
    "prompts": {"prompt": str, "user_id": str},
    "comparisons": {"prompt": str, "responses": list, "ranks": list, "labeler_id": str, "user_id": str},
}


class DataError(ValueError):
    """A row of an input file breaks the schema; the message names file, line and field."""


MAX_LINE_BYTES = 1_000_000  # a longer line is an error (never silently dropped or truncated)


def read_numbered(path, max_line_bytes=MAX_LINE_BYTES):
    """(line number, row) of each non-blank line of a JSONL file; every line must be a UTF-8
    JSON object of at most `max_line_bytes` bytes, with no NaN or infinity in it."""
    rows = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if len(raw) > max_line_bytes:
                raise DataError(f"{path}:{n}: line of {len(raw):,} bytes is over the limit of "
                                f"{max_line_bytes:,} (igpt_lib.data.MAX_LINE_BYTES)")
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
            bad = _non_finite(row)
            if bad:
                raise DataError(f"{path}:{n}: field {bad!r} is NaN or infinite")
            rows.append((n, row))
    return rows


def read_jsonl(path, max_line_bytes=MAX_LINE_BYTES):
    """Rows of a JSONL file (checked as `read_numbered` checks them); blank lines are skipped."""
    return [row for _, row in read_numbered(path, max_line_bytes)]


def _non_finite(value, where=""):
    """The path (e.g. 'likert[2]') of the first NaN/inf number in a parsed JSON value, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "<row>"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else key))
        if found:
            return found
    return None


def validate(rows, schema, path="<rows>", lines=None):
    """Check rows against a schema; errors name `path`, the row's line (from `lines`, else its
    1-based position) and the field."""
    fields = SCHEMAS[schema]
    for i, row in enumerate(rows):
        where = f"{path}:{lines[i] if lines else i + 1}"
        for name, kind in fields.items():
            if name not in row:
                raise DataError(f"{where}: field {name!r} is missing ({schema} schema)")
            if not isinstance(row[name], kind):
                raise DataError(f"{where}: field {name!r} should be {kind.__name__}, "
                                f"got {type(row[name]).__name__}")
        for name in ("prompt", "response", "user_id"):
            if name in fields and not row[name].strip():
                raise DataError(f"{where}: field {name!r} is empty")
        if schema == "comparisons":
            _check_comparison(row, where)
    return rows


def _check_comparison(row, where):
    responses, ranks, k = row["responses"], row["ranks"], len(row["responses"])
    if k < 2:
        raise DataError(f"{where}: field 'responses' needs at least 2 responses, got {k}")
    for j, y in enumerate(responses):  # may be "" (a policy that answered <eos> at once gets ranked too)
        if not isinstance(y, str):
            raise DataError(f"{where}: field 'responses[{j}]' should be str, got {type(y).__name__}")
    if len(ranks) != k:
        raise DataError(f"{where}: field 'ranks' has {len(ranks)} entries for {k} responses")
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in ranks):
        raise DataError(f"{where}: field 'ranks' should hold integers (0 = best), got {ranks}")
    if sorted(set(ranks)) != list(range(max(ranks) + 1)) or min(ranks) != 0:
        raise DataError(f"{where}: field 'ranks' {ranks} is not a ranking with ties "
                        "(0 = best, equal = tie, no gaps: e.g. [0, 1, 1, 2])")
    for name in ("likert", "flags"):
        if name in row and (not isinstance(row[name], list) or len(row[name]) != k):
            raise DataError(f"{where}: field {name!r} should be a list with one entry per response ({k})")
    if "likert" in row and not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 7
                                   for x in row["likert"]):
        raise DataError(f"{where}: field 'likert' should hold integers 1-7, got {row['likert']}")


def _loader(schema):
    def load(path):
        numbered = read_numbered(path)
        return validate([row for _, row in numbered], schema, path, [n for n, _ in numbered])
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
    """(rows, line numbers) of a local JSONL file, or (rows, None) of a hub dataset's train split."""
    if Path(source).exists():
        numbered = read_numbered(source)
        return [row for _, row in numbered], [n for n, _ in numbered]
    if Path(source).suffix in (".jsonl", ".json"):  # a path, mistyped: do not ask the hub
        raise DataError(f"{source}: no such file")
    import datasets  # only for hub names: no network is touched for local files
    return list(datasets.load_dataset(source, split="train")), None


def load_comparisons(source):
    """Comparisons as a `datasets.Dataset` with at least prompt, responses, ranks (0 = best).

    `source`: our JSONL, OpenAssistant message trees (one row per group of ≥ 2 ranked sibling
    replies) or flat OpenAssistant messages, HH-RLHF chosen/rejected (K = 2), a local file or
    a hub name. Bad rows raise DataError naming the file, line and field."""
    from datasets import Dataset
    from .adapters import to_comparisons
    rows, lines = _rows_of(source)
    converted = to_comparisons(rows, str(source))
    rows = validate(converted, "comparisons", source, lines if converted is rows else None)
    return Dataset.from_list(rows)


def load_demonstrations_any(source):
    """Demonstrations from our JSONL, a Dolly-schema JSONL, or a hub dataset name (train split)."""
    rows, lines = _rows_of(source)
    if rows and "instruction" in rows[0]:
        from .adapters import from_dolly
        return from_dolly(rows, source)
    return validate(rows, "demonstrations", source, lines)


def append_jsonl(path, row):
    """Append one row and force it to disk (flush + fsync): a kernel restart loses nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def recover_torn_tail(path):
    """If the last line of a JSONL file was cut off mid-write (a power cut during an append: no
    final newline, not parseable), move it to `<path>.torn` and rewrite the file atomically with
    the good lines; returns the torn text, or None when the file is whole. A bad line anywhere
    else is not a torn write: reading the file raises DataError as usual."""
    path = Path(path)
    if not path.exists():
        return None
    raw = path.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return None
    head, _, tail = raw.rpartition(b"\n")
    try:
        json.loads(tail.decode("utf-8"))
        return None  # a whole row that only lacks its newline
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    Path(f"{path}.torn").write_bytes(tail)
    _atomic_write(path, (head + b"\n").decode("utf-8") if head else "")
    return tail.decode("utf-8", errors="replace")


def split_by_user(rows, val_frac=0.05):
    """(train, val): a deterministic split by user_id (crc32), so no user is on both sides (§3.2);
    for hub datasets, whose files come without our split."""
    is_val = [zlib.crc32(str(r["user_id"]).encode()) % 1000 < val_frac * 1000 for r in rows]
    return [r for r, v in zip(rows, is_val) if not v], [r for r, v in zip(rows, is_val) if v]
