"""Registry latency: the S3 backend (moto's server on loopback) next to the filesystem's.

    python bench/bench_registry.py [--repeats 30] [--size 1048576] [--dir /tmp]

In one run, on the same machine, for each backend: the median time of ``register_model``
(a model file of ``--size`` bytes, a new version each time), of ``promote_to_production``
(each registered version in turn, so every promotion also archives the previous one) and of
``get_production_version`` (what a monitor polls).  The S3 server is moto's S3 application
in its own process on ``127.0.0.1``, serving one request at a time (``tests/s3_server.py``
says why), so the S3 figures are the backend's request count times a loopback round trip
plus moto's own work: a lower bound for a real S3, where a round trip costs 10-50 ms.  The
filesystem registry is in ``--dir`` (default: the system's temp directory), with the
fsyncs it always does.  The first S3 write (the conditional-write probe) is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_core.registry import ModelRegistry  # noqa: E402
from tests.s3_server import S3Server  # noqa: E402


def median_ms(run: Callable[[int], object], repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(registry: ModelRegistry, model: Path, repeats: int) -> dict[str, float]:
    registry.register_model("bench", "warmup", model)  # the S3 probe happens here
    return {
        "register": median_ms(lambda i: registry.register_model("bench", f"1.{i}", model), repeats),
        "promote to production": median_ms(
            lambda i: registry.promote_to_production("bench", f"1.{i}"), repeats
        ),
        "read production version": median_ms(
            lambda i: registry.get_production_version("bench"), repeats
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per operation")
    parser.add_argument("--size", type=int, default=1 << 20, help="model file size in bytes")
    parser.add_argument("--dir", default=None, help="where the filesystem registry lives")
    args = parser.parse_args()

    server = S3Server()
    try:
        os.environ.update(server.env())
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            model = Path(tmp) / "model.bin"
            model.write_bytes(os.urandom(args.size))
            fs_figures = measure(ModelRegistry(Path(tmp) / "reg"), model, args.repeats)
            s3 = ModelRegistry(f"s3://{server.create_bucket()}/reg", cache_dir=Path(tmp) / "c")
            s3_figures = measure(s3, model, args.repeats)
    finally:
        server.stop()

    print(
        f"registry latency, median of {args.repeats} (model {args.size:,} bytes):"
        " filesystem vs S3 (moto on loopback)"
    )
    print(f"{'operation':<26}{'filesystem':>12}{'s3':>12}{'s3/fs':>8}")
    for name, fs_ms in fs_figures.items():
        s3_ms = s3_figures[name]
        print(f"{name:<26}{fs_ms:>9.2f} ms{s3_ms:>9.2f} ms{s3_ms / fs_ms:>7.1f}x")


if __name__ == "__main__":
    main()
