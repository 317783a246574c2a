"""A judged query set in the BEIR layout: `queries.jsonl` and `qrels/<split>.tsv` (query-id, corpus-id, score)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import orjson

from ragbus.errors import InputError


@dataclass(frozen=True)
class JudgedSet:
    """Questions and, for each, the documents judged relevant (doc_id -> grade)."""

    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_judged_set(directory: Path, split: str | None = None, limit: int | None = None) -> JudgedSet:
    """The judged queries of `directory` (the `test` split when there are several); InputError says what is amiss.

    `limit`: only the first `limit` judged queries (in queries.jsonl's order).
    """
    queries_path, qrels_dir = directory / "queries.jsonl", directory / "qrels"
    if not queries_path.is_file() or not qrels_dir.is_dir():
        raise InputError(f"{directory}: not a judged set in the BEIR layout (queries.jsonl and qrels/*.tsv)")
    splits = sorted(p.stem for p in qrels_dir.glob("*.tsv"))
    chosen = split or ("test" if "test" in splits else (splits[0] if len(splits) == 1 else ""))
    if chosen not in splits:
        raise InputError(f"{qrels_dir}: choose a split with --split ({', '.join(splits) or 'none found'})")
    qrels = _qrels(qrels_dir / f"{chosen}.tsv")
    texts: dict[str, str] = {}
    for n, line in enumerate(queries_path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            query_id, text = str(row["_id"]), str(row["text"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f'{queries_path}:{n}: not a query line ({{"_id", "text"}}): {exc}') from None
        if query_id in qrels and any(grade > 0 for grade in qrels[query_id].values()):
            texts[query_id] = text
    if not texts:
        raise InputError(f"{directory}: no query of queries.jsonl has a relevant document in qrels/{chosen}.tsv")
    chosen_ids = list(texts)[:limit] if limit else list(texts)
    name = directory.resolve().name if chosen == "test" else f"{directory.resolve().name}/{chosen}"
    return JudgedSet(name, {q: texts[q] for q in chosen_ids}, {q: qrels[q] for q in chosen_ids})


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    judged: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not reader.fieldnames or not {"query-id", "corpus-id", "score"} <= set(reader.fieldnames):
            raise InputError(f"{path}: expected a header line 'query-id<TAB>corpus-id<TAB>score'")
        for n, row in enumerate(reader, 2):
            try:
                judged.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
            except (TypeError, ValueError):
                raise InputError(f"{path}:{n}: the score must be an integer, got {row.get('score')!r}") from None
    return judged
