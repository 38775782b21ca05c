"""Imports go one way: the exporter builds on the library, alerts on notifiers.

The library (``mlops_core``) must not know the daemon (``exporter``), and no two modules
may import each other, not even inside a function, where a cycle hides until the function
runs.  Checked on the source (every ``import`` statement, wherever it is) and on a fresh
interpreter (what importing the library actually loads).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LIBRARY = REPO_ROOT / "mlops_core"


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in the file names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted(LIBRARY.rglob("*.py")), ids=lambda p: p.name)
def test_the_library_never_imports_the_exporter(path: Path) -> None:
    daemon = {m for m in imported_modules(path) if m == "exporter" or m.startswith("exporter.")}
    assert not daemon, f"{path.relative_to(REPO_ROOT)} imports {sorted(daemon)}"


def test_notifiers_do_not_import_alerts() -> None:
    """alerts.py uses the notifiers; the notifiers read durations from mlops_core.durations."""
    assert "mlops_core.alerts" not in imported_modules(LIBRARY / "notifiers.py")
    assert "mlops_core.durations" in imported_modules(LIBRARY / "notifiers.py")


def test_importing_the_whole_library_loads_no_exporter_module() -> None:
    modules = sorted(
        "mlops_core." + ".".join(p.relative_to(LIBRARY).with_suffix("").parts)
        for p in LIBRARY.rglob("*.py")
        if p.name != "__main__.py"
    )
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        "import mlops_core\n"
        "from mlops_core import *  # noqa\n"
        "print(sorted(m for m in sys.modules if m == 'exporter' or m.startswith('exporter.')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_two_modules_import_each_other() -> None:
    """Not even inside a function: ``exporter.cli`` and ``exporter.demo`` did, through
    ``build_exporter`` (now in ``exporter.app``, which both import)."""
    files = sorted([*LIBRARY.rglob("*.py"), *(REPO_ROOT / "exporter").rglob("*.py")])
    names = {_module_name(p): p for p in files}
    imports = {name: imported_modules(path) & set(names) for name, path in names.items()}
    cycles = sorted(
        (a, b)
        for a, targets in imports.items()
        for b in targets
        if a < b and a in imports[b] and not b.startswith(a + ".") and not a.startswith(b + ".")
    )
    assert not cycles, f"modules importing each other: {cycles}"


def test_the_demo_and_the_command_line_share_build_exporter_from_the_app() -> None:
    exporter_dir = REPO_ROOT / "exporter"
    assert "exporter.cli" not in imported_modules(exporter_dir / "demo.py")
    assert "exporter.app.build_exporter" in imported_modules(exporter_dir / "demo.py")
    assert "exporter.app.build_exporter" in imported_modules(exporter_dir / "cli.py")
