"""The registry's safety claims, tested with real processes rather than assumed.

* Crash: a writer process is killed with SIGKILL at random moments in a loop of registrations
  and promotions, and, separately, just before each of its file-system calls in turn.  After
  every kill the registry must load, pass ``verify``, have at most one production version,
  keep every change the writer reported as done, and its history must replay to the current
  stages.
* Concurrency: 8 writer processes register and promote at once while a reader process reads;
  no update may be lost, the history must be complete and in order, and the reader must
  never see a half-written state.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_core import registry as registry_module
from mlops_core.errors import StageError
from mlops_core.registry import ModelRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent


def _python(script: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=env,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def assert_consistent(registry: ModelRegistry, name: str) -> list[str]:
    """Everything a reader may rely on after any crash; returns the registered versions."""
    versions = registry.list_versions(name)
    ids = [v.version for v in versions]
    assert sum(v.stage == "production" for v in versions) <= 1
    assert sum(v.stage == "staging" for v in versions) <= 1
    bad = [r for r in registry.verify(name) if not r.ok]
    assert not bad, bad
    history = registry.get_history(name)
    assert [h.seq for h in history] == list(range(1, len(history) + 1))
    # replaying the history gives exactly the stages model.json holds now
    replayed: dict[str, str] = {}
    for h in history:
        assert replayed.get(h.version) == h.from_stage, (h, replayed.get(h.version))
        replayed[h.version] = h.to_stage
    assert replayed == {v.version: v.stage for v in versions}
    assert [h.version for h in history if h.action == "register"] == ids
    return ids


def _assert_no_leftovers(registry: ModelRegistry, name: str) -> None:
    mdir = registry.root / name
    expected = [".lock", "history.jsonl", "model.json", "versions"]
    assert sorted(p.name for p in mdir.iterdir()) == expected
    assert sorted(p.name for p in (mdir / "versions").iterdir()) == sorted(
        v.version for v in registry.list_versions(name)
    )


def _left_half_done(mdir: Path) -> bool:
    """Evidence that a kill landed inside a write: temp files, orphans, history behind."""
    doc = json.loads((mdir / "model.json").read_text())
    history = mdir / "history.jsonl"
    events = len(history.read_text().splitlines()) if history.exists() else 0
    listed = {v["version"] for v in doc["versions"]}
    stray = [p.name for p in mdir.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    stray += [p.name for p in (mdir / "versions").iterdir() if p.name not in listed]
    return bool(stray) or events < doc["seq"]


# --- crash: SIGKILL from the parent at random moments -----------------------------------------

_CRASH_WRITER = """
import os, random, sys
from mlops_core.errors import StageError
from mlops_core.registry import ModelRegistry

root, round_no, seed, srcdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
reg = ModelRegistry(root)
src = os.path.join(srcdir, f"m{round_no}.bin")
os.makedirs(os.path.dirname(src), exist_ok=True)
with open(src, "wb") as fh:
    fh.write(os.urandom(rng.randint(1, 256 * 1024)))  # copies take a moment: kills land inside
print("ready", flush=True)
for i in range(10_000):
    version = f"{round_no}.{i}"
    reg.register_model("crashy", version, src, {"i": i})
    sys.stdout.write(f"done register {version}\\n"); sys.stdout.flush()
    op = rng.choice(["staging", "production", "production", "rollback", "archive"])
    try:
        if op == "staging":
            reg.promote_to_staging("crashy", version)
        elif op == "production":
            reg.promote_to_production("crashy", version)
        elif op == "rollback":
            reg.rollback("crashy")
        else:
            reg.archive_version("crashy", version)
        sys.stdout.write(f"done {op} {version}\\n"); sys.stdout.flush()
    except StageError:
        pass
"""


def kill_writers_at_random_moments(
    location: str, srcdir: Path, rounds: int, half_done: Callable[[], bool]
) -> tuple[set[str], int, int]:
    """SIGKILL ``rounds`` writer processes of the registry at ``location`` at random moments.

    After each kill the registry must be consistent and hold every registration the writer
    reported done.  Returns (acknowledged registrations, kills that ``half_done`` says
    landed inside a write, the seed).  Shared by the filesystem and S3 tests.
    """
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    registry = ModelRegistry(location)
    acknowledged: set[str] = set()
    kills_inside_a_write = 0
    # on a loaded machine (CI with coverage) a run of kills may all land between writes:
    # go on, up to four times the rounds, until one lands inside a write
    round_no = -1
    while round_no + 1 < rounds or (not kills_inside_a_write and round_no + 1 < 4 * rounds):
        round_no += 1
        proc = _python(
            _CRASH_WRITER, location, str(round_no), str(rng.getrandbits(32)), str(srcdir),
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        early: list[str] = []
        if round_no % 2:
            # every other round waits for a first registration, so that a slow machine (CI
            # with coverage) still sees operations acknowledged; the kill is random after it
            early.append(proc.stdout.readline())
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # read() and not communicate(): communicate reads the pipe's descriptor and would
        # miss lines readline() already buffered
        output = "".join(early) + proc.stdout.read()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL, f"writer exited on its own (seed {seed})"
        # only whole lines count: the kill can land between the parts print() writes, and
        # a cut "done register" acknowledges nothing
        whole = output.split("\n")[:-1]
        done = [line.split() for line in whole if line.startswith("done")]
        acknowledged |= {v for _, op, v in done if op == "register"}
        if not registry.list_models():
            assert not acknowledged  # killed before the first registration committed
            continue
        kills_inside_a_write += half_done()
        ids = assert_consistent(registry, "crashy")
        missing = acknowledged - set(ids)
        assert not missing, f"acknowledged registrations lost: {missing} (seed {seed})"
    return acknowledged, kills_inside_a_write, seed


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_consistent_registry(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    registry = ModelRegistry(root)
    rounds = 10
    acknowledged, kills_inside_a_write, seed = kill_writers_at_random_moments(
        str(root), tmp_path / "reg-src", rounds, lambda: _left_half_done(root / "crashy")
    )
    # the next writer finishes what the killed ones left and the directory is clean again
    registry.register_model("crashy", "final", tmp_path / "reg-src" / "m0.bin")
    assert_consistent(registry, "crashy")
    _assert_no_leftovers(registry, "crashy")
    assert len(acknowledged) >= rounds // 2, f"too few operations ran (seed {seed})"
    # about 70% of kills land inside a write; none at all would mean the test proves nothing
    assert kills_inside_a_write >= 1, f"no kill interrupted a write (seed {seed})"


# --- crash: killed just before each file-system call in turn ----------------------------------


# every call that changes the disk; killing before each one reaches every on-disk state a
# crash can leave (an open() that creates a file is always followed by one of these)
_TRACKED_CALLS = ("write", "fsync", "replace", "rename", "mkdir", "unlink")


def _scenario(registry: ModelRegistry, src: Path) -> None:
    registry.register_model("churn", "1.0", src)
    registry.register_model("churn", "1.1", src)
    registry.promote_to_staging("churn", "1.1")
    registry.promote_to_production("churn", "1.0")
    registry.promote_to_production("churn", "1.1")
    registry.rollback("churn")


def _run_and_kill_at(
    registry: ModelRegistry, src: Path, kill_at: int, scenario: Callable[..., None]
) -> int:
    """Fork; the child counts file-system calls and SIGKILLs itself before call ``kill_at``.

    Returns the number of calls the child made (when it was not killed).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        calls = [0]
        originals = {name: getattr(os, name) for name in _TRACKED_CALLS}

        def tracked(name: str) -> Callable[..., object]:
            def call(*args: object, **kwargs: object) -> object:
                calls[0] += 1
                if calls[0] == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return originals[name](*args, **kwargs)

            return call

        for name in _TRACKED_CALLS:
            setattr(os, name, tracked(name))
        try:
            scenario(registry, src)
            for name, func in originals.items():
                setattr(os, name, func)
            os.write(write_end, str(calls[0]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        reported = fh.read()
    _, status = os.waitpid(pid, 0)
    if kill_at and reported:
        raise AssertionError(f"child was not killed at call {kill_at}")
    if kill_at:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return int(reported or 0)


@pytest.mark.slow
def test_sigkill_before_every_file_system_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fsync stays a kill point but does no disk flush: a killed process cannot lose what
    # is in the page cache, so flushing changes nothing this test can observe, and 137
    # crash points x ~20 real fsyncs cost many seconds on a busy disk
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    src = tmp_path / "model.pkl"
    src.write_bytes(b"weights" * 100)
    total = _run_and_kill_at(ModelRegistry(tmp_path / "count"), src, 0, _scenario)
    assert total > 50  # the scenario really goes through the tracked calls
    for kill_at in range(1, total + 1):
        registry = ModelRegistry(tmp_path / f"k{kill_at}")
        _run_and_kill_at(registry, src, kill_at, _scenario)
        if "churn" not in registry.list_models():
            continue
        before = assert_consistent(registry, "churn")
        # a new writer recovers and can carry on from whatever state was left
        registry.register_model("churn", "after", src)
        assert assert_consistent(registry, "churn") == [*before, "after"]
        _assert_no_leftovers(registry, "churn")


_REFERENCE = {"x": [float(i) for i in range(50)], "colour": ["red", "blue"] * 25}


def _scenario_with_reference(registry: ModelRegistry, src: Path) -> None:
    registry.register_model("churn", "1.0", src, reference=_REFERENCE)
    registry.register_model("churn", "1.1", src, reference=_REFERENCE)
    registry.promote_to_production("churn", "1.1")


@pytest.mark.slow
def test_sigkill_before_every_file_system_call_leaves_each_reference_whole_or_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference profile lands with its version in one rename: a listed version always
    has its profile, intact, and a killed registration leaves none behind."""
    from mlops_core.profile import ReferenceProfile

    monkeypatch.setattr(os, "fsync", lambda fd: None)  # see the test above
    src = tmp_path / "model.pkl"
    src.write_bytes(b"weights" * 100)
    expected = ReferenceProfile.from_data(_REFERENCE).hash
    total = _run_and_kill_at(ModelRegistry(tmp_path / "count"), src, 0, _scenario_with_reference)
    assert total > 20
    for kill_at in range(1, total + 1):
        registry = ModelRegistry(tmp_path / f"k{kill_at}")
        _run_and_kill_at(registry, src, kill_at, _scenario_with_reference)
        if "churn" not in registry.list_models():
            continue
        before = assert_consistent(registry, "churn")  # verify() re-hashes the profiles too
        for version in before:
            assert registry.get_reference_profile("churn", version).hash == expected
        registry.register_model("churn", "after", src, reference=_REFERENCE)
        assert assert_consistent(registry, "churn") == [*before, "after"]
        _assert_no_leftovers(registry, "churn")


# --- concurrency: 8 writers and a reader at once ----------------------------------------------

WRITERS, VERSIONS_EACH = 8, 4

_WRITER = """
import os, sys, time
from mlops_core.registry import ModelRegistry

root, src, go, wid, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
reg = ModelRegistry(root)
open(f"{go}.ready-{wid}", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
for j in range(n):
    version = f"{wid}.{j}"
    reg.register_model("shared", version, src, {"writer": int(wid), "j": j})
    reg.register_model(f"own-{wid}", version, src)
    reg.promote_to_staging("shared", version)
    reg.promote_to_production("shared", version)
"""

_READER = """
import os, sys, time
from mlops_core.errors import ModelNotFoundError
from mlops_core.registry import ModelRegistry

root, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
reg = ModelRegistry(root)
reads = errors = 0
open(ready, "w").close()
while not os.path.exists(stop):
    try:
        if "shared" in reg.list_models():
            versions = reg.list_versions("shared")
            history = reg.get_history("shared")
            assert [h.seq for h in history] == list(range(1, len(history) + 1))
            assert sum(v.stage == "production" for v in versions) <= 1
            if reg.get_production_version("shared") is not None:
                reg.get_production_model_path("shared").read_bytes()
            reads += 1
    except ModelNotFoundError:
        pass
    except Exception as exc:
        errors += 1
        print("reader error:", type(exc).__name__, exc, file=sys.stderr)
print(reads, errors)
"""


@pytest.mark.slow
def test_eight_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    race_eight_writers_and_a_reader(str(tmp_path / "reg"), tmp_path)


def race_eight_writers_and_a_reader(root: str, tmp_path: Path) -> None:
    """8 writer processes and a reader on the registry at ``root``; then check everything.

    Shared by the filesystem and S3 tests: the same programs, the same assertions.
    """
    go, stop = tmp_path / "go", tmp_path / "stop"
    src = tmp_path / "model.pkl"
    src.write_bytes(b"shared weights")
    writers = [
        _python(_WRITER, root, str(src), str(go), str(w), str(VERSIONS_EACH))
        for w in range(WRITERS)
    ]
    reader = _python(_READER, root, str(stop), f"{go}.ready-reader", stdout=subprocess.PIPE)
    # a barrier, not a sleep: on a loaded machine interpreters start late, and the reader must
    # be reading before the writers start, or the writers could finish before it reads once
    ready = [Path(f"{go}.ready-{w}") for w in (*range(WRITERS), "reader")]
    deadline = time.monotonic() + 120
    while not all(p.exists() for p in ready):
        assert time.monotonic() < deadline, "writer/reader processes did not start"
        assert all(p.poll() is None for p in (*writers, reader)), "a process died at start"
        time.sleep(0.01)
    go.touch()
    try:
        assert [w.wait(timeout=120) for w in writers] == [0] * WRITERS
    finally:
        stop.touch()
    out, _ = reader.communicate(timeout=60)
    reads, errors = map(int, out.split())
    assert errors == 0 and reads > 0

    registry = ModelRegistry(root)
    expected = {f"{w}.{j}" for w in range(WRITERS) for j in range(VERSIONS_EACH)}
    ids = assert_consistent(registry, "shared")
    assert len(ids) == len(expected) and set(ids) == expected
    for w in range(WRITERS):
        assert [v.version for v in registry.list_versions(f"own-{w}")] == [
            f"{w}.{j}" for j in range(VERSIONS_EACH)
        ]
    history = registry.get_history("shared")
    actions = [(h.action, h.version, h.to_stage) for h in history]
    for version in expected:  # each writer's three changes are all there, in its order
        mine = [a for a in actions if a[1] == version and a[0] in ("register", "promote")]
        assert [a[2] for a in mine] == ["none", "staging", "production"]
    for w in range(WRITERS):
        order = [a[1] for a in actions if a[0] == "register" and a[1].startswith(f"{w}.")]
        assert order == [f"{w}.{j}" for j in range(VERSIONS_EACH)]
    # every production promotion but the last is remembered for rollback, in order
    productions = [a[1] for a in actions if a[0] == "promote" and a[2] == "production"]
    info = registry.get_model("shared")
    assert info.production == productions[-1]
    assert list(info.rollback_targets) == productions[:-1]
    assert registry.rollback("shared") == productions[-2]


def test_stage_errors_do_not_write(tmp_path: Path) -> None:
    """A refused change leaves model.json and history.jsonl byte-for-byte unchanged."""
    src = tmp_path / "model.pkl"
    src.write_bytes(b"w")
    registry = ModelRegistry(tmp_path / "reg")
    registry.register_model("churn", "1.0", src)
    files = [registry.root / "churn" / f for f in (registry_module.MODEL_FILE, "history.jsonl")]
    before = [f.read_bytes() for f in files]
    with pytest.raises(StageError):
        registry.rollback("churn")
    assert [f.read_bytes() for f in files] == before
