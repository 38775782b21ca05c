"""Tables of the docs generated from code: one marked block per page, rewritten or checked.

docs/metrics.md's table comes from the metric catalog, docs/configuration.md's from the
config schema.  Both pages hold the table between two HTML comments; ``render`` rewrites
what is between them and ``main`` is the command line both modules expose
(``--check`` exits 1 when the committed table is stale, which a test runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def render(text: str, start: str, end: str, table: str, where: Path) -> str:
    """``text`` with the block between the ``start`` and ``end`` markers set to ``table``."""
    if start not in text or end not in text:
        raise ValueError(f"{where}: the generated-table markers are missing")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def main(
    argv: list[str] | None,
    *,
    description: str,
    default: Path,
    render_docs: Callable[[str], str],
    command: str,
) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    parser.add_argument("--docs", type=Path, default=default)
    args = parser.parse_args(argv)
    current = args.docs.read_text(encoding="utf-8")
    try:
        wanted = render_docs(current)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if wanted != current:
            print(f"error: {args.docs} is out of date: run {command}", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        args.docs.write_text(wanted, encoding="utf-8")
    return 0
