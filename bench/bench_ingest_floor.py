"""How far below the disabled ingest a join of outcomes in Python can go: the floor of the
ingest bar of docs/outcomes-store.md, measured, not argued.

    python bench/bench_ingest_floor.py [--lines 300000] [--repeat 5]

Writes the log of ``bench/bench_ingest_outcomes.py`` (``--lines`` predictions, half of them
with an outcome), then measures in one process, interleaved, medians of ``--repeat``, CPU
seconds:

- **disabled**: the whole disabled ingest (``run(..., outcomes=False)`` of that bench);
- **keyed decode**: what decoding the keyed fields (``request_id``, ``model_version``,
  ``actual``, the probability, the ``probabilities`` kept raw) in the record parser's one
  msgspec decode adds to that decode;
- **bare core**: the least a join can do with what that decode gives, vectorised with numpy
  and none of the store's rules: gather the keyed columns (``map``/``attrgetter``), hash
  the request ids, keep sorted runs of 64-bit hashes, find each outcome's prediction with
  ``searchsorted``, count the confusion pairs, and write one blob row per poll into SQLite
  (WAL, ``synchronous=FULL``).  No duplicates, held outcomes, expiry, eviction, quality
  window, replay offsets or regressors: everything the real store must add costs more;
- **native parse**, when ``pyarrow`` or ``polars`` is installed (neither is a dependency):
  the keyed fields parsed by their JSON readers straight into columns, a second parse.

Prints each figure and the bound it puts on the ratio enabled / disabled: ``disabled /
(disabled + extra)``.  The bar is 0.5x.
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import CATEGORICAL, NUMERIC, reference_profile  # noqa: E402
from bench_ingest_outcomes import run, write_log  # noqa: E402

TARGET = 0.5
_EVENT, _RID, _PRED = attrgetter("event"), attrgetter("request_id"), attrgetter("prediction")
_VERSION, _ACTUAL, _CLS = attrgetter("model_version"), attrgetter("actual"), attrgetter("cls")
_PROB, _PROBS = attrgetter("probability"), attrgetter("probabilities")


def decoders() -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]:
    """The record parser's decode (input_data, class, latency) and the same with the keyed
    fields added."""
    inputs = msgspec.defstruct(
        "Inp",
        [(n, float | None, None) for n in NUMERIC]
        + [(n, str | int | bool | None, None) for n in CATEGORICAL],
        gc=False,
    )
    plain_pred = msgspec.defstruct(
        "P0", [("cls", str | int | float | bool | None, None)], rename={"cls": "class"}, gc=False
    )
    keyed_pred = msgspec.defstruct(
        "P1",
        [
            ("cls", str | int | float | bool | None, None),
            ("probability", float | None, None),
            ("probabilities", msgspec.Raw, None),
        ],
        rename={"cls": "class"},
        gc=False,
    )
    common = [
        ("event", str | None, None),
        ("timestamp", str | float | None, None),
        ("input_data", inputs | None, None),
        ("latency_ms", float | None, None),
    ]
    plain = msgspec.defstruct(
        "R0", [*common, ("prediction", plain_pred | list | str | int | float | bool | None, None)],
        gc=False,
    )  # fmt: skip
    keyed = msgspec.defstruct(
        "R1",
        [
            *common,
            ("prediction", keyed_pred | list | str | int | float | bool | None, None),
            ("model_version", Any, None),
            ("request_id", Any, None),
            ("actual", Any, None),
        ],
        gc=False,
    )
    return msgspec.json.Decoder(plain), msgspec.json.Decoder(keyed)


def blocks_of(data: bytes, size: int) -> list[bytes]:
    """The log in blocks of whole lines of about ``size`` bytes, as the follower reads."""
    out, i = [], 0
    while i < len(data):
        j = data.rfind(b"\n", i, i + size)
        j = len(data) - 1 if j < i else j
        out.append(data[i : j + 1])
        i = j + 1
    return out


def bare_core(records: list[list[Any]], work: Path) -> int:
    """The join with none of the rules (see the module's docstring); returns the joins."""
    for stale in work.glob("core.db*"):
        stale.unlink()
    db = sqlite3.connect(work / "core.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE blocks (id INTEGER PRIMARY KEY, data BLOB)")
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    ids: list[str] = []
    classes: list[Any] = []
    versions: dict[Any, int] = {}
    joined, base, poll = 0, 0, []
    for number, rs in enumerate(records):
        is_prediction = np.fromiter(map("prediction".__eq__, map(_EVENT, rs)), bool, len(rs))
        p_at, o_at = np.flatnonzero(is_prediction).tolist(), np.flatnonzero(~is_prediction)
        preds = list(map(rs.__getitem__, p_at))
        p_ids = list(map(_RID, preds))
        shaped = list(map(_PRED, preds))
        p_cls = list(map(_CLS, shaped))
        p_prob = np.array(list(map(_PROB, shaped)), dtype=float)
        p_probs = list(map(_PROBS, shaped))
        list(map(versions.setdefault, map(_VERSION, preds), [0] * len(preds)))
        hashes = np.fromiter(map(hash, p_ids), np.int64, len(p_ids))
        order = np.argsort(hashes)
        runs.append((hashes[order], np.arange(base, base + len(p_ids))[order]))
        base += len(p_ids)
        ids += p_ids
        classes += p_cls
        poll.append(b"\n".join(map(str.encode, p_ids)) + p_prob.tobytes() + b"\0".join(p_probs))
        outs = list(map(rs.__getitem__, o_at.tolist()))
        o_ids = list(map(_RID, outs))
        actual = list(map(_ACTUAL, outs))
        wanted = np.fromiter(map(hash, o_ids), np.int64, len(o_ids))
        found = np.full(len(wanted), -1, np.int64)
        for keys, where in runs:
            if keys.size:
                k = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
                hit = keys[k] == wanted
                found[hit] = where[k[hit]]
        ok = np.flatnonzero(found >= 0).tolist()
        at = found[found >= 0].tolist()
        same = list(map(str.__eq__, map(ids.__getitem__, at), map(o_ids.__getitem__, ok)))
        joined += sum(same)
        Counter(zip(map(classes.__getitem__, at), map(actual.__getitem__, ok), strict=True))
        if len(runs) > 8:  # merge the runs, as an LSM does
            keys = np.concatenate([r[0] for r in runs])
            where = np.concatenate([r[1] for r in runs])
            order = np.argsort(keys, kind="stable")
            runs = [(keys[order], where[order])]
        if number % 16 == 15:  # a poll: one transaction
            db.execute("BEGIN")
            db.execute("INSERT INTO blocks (data) VALUES (?)", (b"".join(poll),))
            db.execute("COMMIT")
            poll = []
    db.close()
    return joined


def native_parse(blocks: list[bytes]) -> dict[str, Callable[[], object]]:
    """The keyed fields parsed into columns by pyarrow's and polars' JSON readers."""
    out: dict[str, Callable[[], object]] = {}
    try:
        import pyarrow as pa
        import pyarrow.json as pj

        schema = pa.schema([
            ("event", pa.string()), ("timestamp", pa.string()), ("model_version", pa.string()),
            ("request_id", pa.string()), ("actual", pa.int64()),
            ("prediction", pa.struct([("class", pa.int64()), ("probability", pa.float64())])),
        ])  # fmt: skip
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        out["pyarrow.json.read_json"] = lambda: [
            pj.read_json(io.BytesIO(b), parse_options=options) for b in blocks
        ]
    except ImportError:
        pass
    try:
        import polars as pl

        pschema = {
            "event": pl.Utf8, "timestamp": pl.Utf8, "model_version": pl.Utf8,
            "request_id": pl.Utf8, "actual": pl.Int64,
            "prediction": pl.Struct({"class": pl.Int64, "probability": pl.Float64}),
        }  # fmt: skip
        out["polars.read_ndjson"] = lambda: [
            pl.read_ndjson(io.BytesIO(b), schema=pschema) for b in blocks
        ]
    except ImportError:
        pass
    return out


def cpu(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=300_000, help="prediction lines")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    profile = reference_profile(rng)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-floor-"))
    path, work = tmp / "predictions.jsonl", tmp / "state"
    work.mkdir()
    n_pred, n_out = write_log(path, args.lines, 0.5, rng)
    data = path.read_bytes()
    blocks = blocks_of(data, 1 << 20)
    plain, keyed = decoders()
    records = [keyed.decode_lines(b) for b in blocks]
    assert bare_core(records, work) == n_out
    natives = native_parse(blocks)
    figures: dict[str, list[float]] = {"disabled": [], "keyed decode": [], "bare core": []}
    figures.update({name: [] for name in natives})
    for _ in range(args.repeat):  # interleaved: every figure sees the same machine load
        figures["disabled"].append(run(path, profile, work, outcomes=False)[1])
        with_keys = cpu(lambda: [keyed.decode_lines(b) for b in blocks])
        without = cpu(lambda: [plain.decode_lines(b) for b in blocks])
        figures["keyed decode"].append(max(0.0, with_keys - without))
        figures["bare core"].append(cpu(lambda: bare_core(records, work)))
        for name, call in natives.items():
            figures[name].append(cpu(call))
    med = {name: statistics.median(v) for name, v in figures.items()}
    disabled = med["disabled"]
    print(f"{n_pred + n_out:,} lines ({n_pred:,} predictions, {n_out:,} outcomes), "
          f"medians of {args.repeat}, CPU seconds, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'':<44} {'CPU s':>7} {'ratio bound':>12}")
    print(f"{'disabled ingest (the whole of it)':<44} {disabled:>7.3f}")
    extra = med["keyed decode"] + med["bare core"]
    rows = [
        ("keyed fields in the one decode", med["keyed decode"], None),
        ("bare vectorised core (no rules)", med["bare core"], None),
        ("  the two together", extra, disabled / (disabled + extra)),
    ] + [(f"native parse: {name}", med[name], disabled / (disabled + med[name]))
         for name in natives]  # fmt: skip
    for name, value, bound in rows:
        shown = "" if bound is None else f"{bound:>11.2f}x"
        print(f"{name:<44} {value:>7.3f} {shown:>12}".rstrip())
    if not natives:
        print("native parse: pyarrow and polars are not installed (neither is a dependency)")
    print(f"target >= {TARGET:.1f}x; the store's rules come on top of the bare core")
    for stale in tmp.rglob("*"):
        if stale.is_file():
            stale.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
