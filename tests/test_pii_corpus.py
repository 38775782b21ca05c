"""The PII rules measured on a hand-labelled corpus (tests/data/pii_corpus.jsonl).

Each line: ``text``; ``pii``, the markers the text must get (empty for a negative);
optionally ``secrets``, the substrings that must not survive (default: the whole text) and a
``note``.  Negatives are near misses on purpose: Luhn-failing card-length numbers, IBANs with
wrong check digits, never-issued SSN ranges, dates, times, versions, ids and floats.

A positive *leaks* when a secret survives or an expected marker is missing; a negative is a
*false positive* when it comes back changed.  The bar: zero leaks, at most 2% false positives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_core.pii import mask_text, sanitize_pii

CORPUS = Path(__file__).parent / "data" / "pii_corpus.jsonl"
FALSE_POSITIVE_CEILING = 0.02
MARKER_TYPES = {"EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP"}


def _load() -> list[dict]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return rows


def test_corpus_is_large_and_covers_every_type() -> None:
    rows = _load()
    assert len(rows) >= 200
    positives = [r for r in rows if r["pii"]]
    negatives = [r for r in rows if not r["pii"]]
    assert len(positives) >= 100 and len(negatives) >= 100
    for kind in MARKER_TYPES:
        assert sum(kind in r["pii"] for r in positives) >= 8, kind
    assert {t for r in positives for t in r["pii"]} == MARKER_TYPES


def _leaks(row: dict, out: str) -> list[str]:
    secrets = row.get("secrets", [row["text"]])
    problems = [f"secret {s!r} survived" for s in secrets if s in out]
    problems += [f"no [REDACTED:{t}]" for t in row["pii"] if f"[REDACTED:{t}]" not in out]
    return problems


def test_corpus_zero_leaks_and_false_positive_ceiling(capsys: pytest.CaptureFixture) -> None:
    rows = _load()
    leaked, false_pos = [], []
    n_pos = n_neg = 0
    for row in rows:
        out = mask_text(row["text"])
        if row["pii"]:
            n_pos += 1
            problems = _leaks(row, out)
            if problems:
                leaked.append(f"{row['text']!r} -> {out!r}: {', '.join(problems)}")
        else:
            n_neg += 1
            if out != row["text"]:
                false_pos.append(f"{row['text']!r} -> {out!r}")
    rate = len(false_pos) / n_neg
    with capsys.disabled():
        print(
            f"\nPII corpus: {n_pos} positives, {len(leaked)} leaked; {n_neg} negatives, "
            f"{len(false_pos)} false positives ({rate:.1%}, ceiling {FALSE_POSITIVE_CEILING:.0%})"
        )
        for line in false_pos:
            print(f"  false positive: {line}")
    assert not leaked, "\n".join(leaked)
    assert rate <= FALSE_POSITIVE_CEILING, "\n".join(false_pos)


def test_corpus_values_are_masked_the_same_inside_a_record() -> None:
    """sanitize_pii applies exactly the string rules to values, at any depth."""
    rows = _load()
    record = {"free_text": [r["text"] for r in rows], "nested": {"deep": (rows[0]["text"],)}}
    clean = sanitize_pii(record)
    assert clean["free_text"] == [mask_text(r["text"]) for r in rows]
    assert clean["nested"]["deep"] == (mask_text(rows[0]["text"]),)
