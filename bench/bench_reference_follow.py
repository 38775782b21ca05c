"""How soon a reference that follows a registry stage sees a promotion, on disk and on S3.

    python bench/bench_reference_follow.py [--repeats 10] [--features 10] [--dir /tmp]

For each backend (a directory, and moto's S3 server on loopback, one request at a time, as
``tests/s3_server.py`` runs it), in one run: versions with a reference profile of
``--features`` features (80% numeric, 10 buckets; 20% categorical) are registered, the
exporter's :class:`exporter.references.StageReference` follows production, and each run
promotes the next version and polls once.  Printed, the median of ``--repeats`` runs:

- **poll, nothing moved**: what every poll costs (reads the stage pointer only);
- **poll that loads the promoted version**: pointer, profile, metrics, features resolved;
- **promote + that poll**: from calling ``promote_to_production`` to ``poll()`` returning
  the change with the new profile loaded.  A deployed exporter adds up to one
  ``reference.poll_interval`` of waiting before that poll.

S3 figures are a lower bound for a real S3, where each request costs 10-50 ms, not 1-3 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.config import ExporterConfig, LogsConfig  # noqa: E402
from exporter.references import RegistrySpec, StageReference, VersionChange, open_reference  # noqa: E402
from mlops_core.profile import ReferenceProfile  # noqa: E402
from mlops_core.registry import ModelRegistry  # noqa: E402
from tests.s3_server import S3Server  # noqa: E402


def profile(n_features: int, seed: int) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    n_cat = max(1, n_features // 5)
    data: dict[str, np.ndarray] = {
        f"num_{i}": rng.normal(50 + seed, 15, 5000) for i in range(n_features - n_cat)
    }
    for i in range(n_cat):
        data[f"cat_{i}"] = rng.choice(["free", "basic", "pro", "enterprise"], 5000)
    return ReferenceProfile.from_data(data)


def measure(location: str, cache: Path, repeats: int, n_features: int) -> dict[str, float]:
    registry = ModelRegistry(location, cache_dir=cache)
    model = cache / "model.bin"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(os.urandom(1024))
    for i in range(repeats + 1):
        registry.register_model(
            "bench", f"1.{i}", model, {"accuracy": 0.8}, reference=profile(n_features, i)
        )
    registry.promote_to_production("bench", "1.0")
    config = ExporterConfig("bench", LogsConfig(paths=("-",)), reference_path="-")
    source = open_reference(
        "bench",
        RegistrySpec(location),
        config,
        registry_factory=lambda loc: ModelRegistry(loc, cache_dir=cache),
    )
    assert isinstance(source, StageReference)
    idle, load, total = [], [], []
    for i in range(1, repeats + 1):
        start = time.perf_counter()
        assert source.poll() is None
        idle.append(time.perf_counter() - start)
        start = time.perf_counter()
        registry.promote_to_production("bench", f"1.{i}")
        promoted = time.perf_counter()
        change = source.poll()
        done = time.perf_counter()
        assert isinstance(change, VersionChange), change
        assert change.new_version == f"1.{i}" == source.current.profile.metadata["model_version"]
        load.append(done - promoted)
        total.append(done - start)
    return {
        "poll, nothing moved": statistics.median(idle) * 1000,
        "poll that loads the promoted version": statistics.median(load) * 1000,
        "promote + that poll": statistics.median(total) * 1000,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--dir", default=None, help="where the filesystem registry goes")
    args = parser.parse_args(argv)
    size = len(json.dumps(profile(args.features, 0).to_json_dict(), indent=1))  # as stored
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = {"filesystem": measure(str(Path(tmp, "reg")), Path(tmp, "c1"), args.repeats,
                                         args.features)}  # fmt: skip
        server = S3Server()
        try:
            client = server.client()
            client.create_bucket(Bucket="bench")
            saved = {k: os.environ.get(k) for k in server.env()}
            os.environ.update(server.env())
            try:
                results["S3 (moto, loopback)"] = measure(
                    "s3://bench/registry", Path(tmp, "c2"), args.repeats, args.features
                )
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        finally:
            server.stop()
    print(
        f"following production: median of {args.repeats} runs, a profile of {args.features}"
        f" features (about {size / 1024:.0f} KiB of JSON)"
    )
    names = list(next(iter(results.values())))
    print(f"  {'':<40}" + "".join(f"{b:>22}" for b in results))
    for name in names:
        print(f"  {name:<40}" + "".join(f"{r[name]:>19.2f} ms" for r in results.values()))


if __name__ == "__main__":
    main()
