"""The README and docs/: links resolve, the README's commands exist, the README stays short.

Links are checked the way GitHub renders them: a relative link names a file of the
repository, and its ``#anchor`` a heading of that file under GitHub's slug rules (lower
case, punctuation dropped, spaces to hyphens, ``-1``, ``-2`` ... for repeats). Code blocks
and inline code are not markdown, so what looks like a link or a heading there is skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from mlops_core.cli import build_parser
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
TEST_COMMAND = "pip install -e '.[test]' && pytest -v --cov"
README_MAX_BYTES = 20_000

# One page per subject; rules/alerts.yml links into runbook.md (checked in test_rules.py).
DOC_PAGES = (
    "configuration.md", "log-format.md", "metrics.md", "drift.md", "rules-and-dashboards.md",
    "deployment.md", "registry.md", "validation.md", "alerting.md", "benchmarks.md",
    "troubleshooting.md", "development.md", "runbook.md", "architecture.md",
)  # fmt: skip

SHELL_BUILTINS = {"cd", "source", ".", "export", "set", "unset", "echo", "exit", "test", "["}

_FENCE = re.compile(r"^ {0,3}(```+|~~~+)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code removed."""
    lines, fence = [], None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0]
            if fence is None:
                fence = marker
            elif fence == marker:
                fence = None
            continue
        if fence is None:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def _fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def github_slug(heading: str) -> str:
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    lines, fence = [], None
    for line in path.read_text(encoding="utf-8").splitlines():  # keep inline code: it is text
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0]
            fence = marker if fence is None else (None if fence == marker else fence)
        elif fence is None:
            lines.append(line)
    for line in lines:
        match = _HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def relative_links(path: Path) -> list[str]:
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        targets += _LINK.findall(line) + _IMAGE.findall(line)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # no http:, mailto:


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        where = (path.parent / file_part).resolve() if file_part else path
        name = f"{path.relative_to(REPO_ROOT)}: {target}"
        if not where.exists():
            broken.append(f"{name} (no such file)")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{name} (no heading with that anchor in {where.name})")
        elif REPO_ROOT not in where.parents and where != REPO_ROOT:
            broken.append(f"{name} (outside the repository)")
    return broken


def test_github_slugs_follow_githubs_rules() -> None:
    assert github_slug("Checkpoint (`logs.state_file`)") == "checkpoint-logsstate_file"
    assert github_slug("3. Kubernetes: the exporter as a native sidecar") == (
        "3-kubernetes-the-exporter-as-a-native-sidecar"
    )
    assert github_slug("Every feature's `mlops_feature_missing_ratio` is 1") == (
        "every-features-mlops_feature_missing_ratio-is-1"
    )


def test_repeated_headings_get_numbered_anchors(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# A\n## Command line\n```sh\n# not a heading\n```\n## Command line\n")
    assert anchors(page) == {"a", "command-line", "command-line-1"}


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "other.md").write_text("# Other page\n")
    page = tmp_path / "p.md"
    page.write_text(
        "# Title\n[ok](other.md#other-page) [ok](#title) `[code](nowhere.md)`\n"
        "[gone](missing.md) [bad](other.md#nope) [bad](#nope)\n"
    )
    assert relative_links(page) == [
        "other.md#other-page", "#title", "missing.md", "other.md#nope", "#nope",
    ]  # fmt: skip
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    assert [p.split(": ", 1)[1] for p in broken_links(page)] == [
        "missing.md (no such file)",
        "other.md#nope (no heading with that anchor in other.md)",
        "#nope (no heading with that anchor in p.md)",
    ]


def test_every_doc_page_exists_and_the_readme_links_to_it() -> None:
    linked = {
        (README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)
    }  # fmt: skip
    for name in DOC_PAGES:
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert unlinked == [], f"docs pages the README does not link to: {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_is_a_few_screens() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move depth to docs/"


def test_the_readme_keeps_its_sections_in_the_order_a_newcomer_needs_them() -> None:
    # what it is, quickstart, your own model in five steps, CLI and flags, layout, links
    headings = [
        (len(m.group(1)), m.group(2))
        for line in _prose_lines(README.read_text(encoding="utf-8"))
        if (m := _HEADING.match(line))
    ]
    assert [t for level, t in headings if level == 2] == [
        "Quickstart", "Your own model in five steps", "Command line", "Repository layout",
        "Documentation",
    ]  # fmt: skip
    start = headings.index((2, "Your own model in five steps"))
    steps = [t for level, t in headings[start + 1 : start + 6] if level == 3]
    assert [t.split(".")[0] for t in steps] == ["1", "2", "3", "4", "5"]
    words = ("Reference", "model server", "config", "Run", "check")
    for step, word in zip(steps, words, strict=True):
        assert word in step, steps
    text = README.read_text(encoding="utf-8")
    own_model = text.split("## Your own model in five steps", 1)[1].split("\n## ", 1)[0]
    assert "start_position" in own_model and "troubleshooting.md" in own_model
    assert "python3 -m venv" in text.split("## Your own model", 1)[0]  # the venv line


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    blocks = _fenced_blocks(README.read_text(encoding="utf-8"), "sh")
    assert TEST_COMMAND in [line.strip() for block in blocks for line in block.splitlines()]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in [line.strip().split(" || ")[0] for line in ci.splitlines()]
    assert "python3 -m venv" in ci and "/bin/activate" in ci, ".ci/run must use a fresh venv"


def _commands(block: str) -> list[list[str]]:
    """Each simple command of a shell block as words: lines joined, comments dropped."""
    text = block.replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for token in lexer:
            if token in (";", "&&", "||", "|", "&"):
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(token)
        if words:
            commands.append(words)
    return [_without_assignments(c) for c in commands if _without_assignments(c)]


def _without_assignments(words: list[str]) -> list[str]:
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    return words


def _console_scripts() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(project["project"]["scripts"])


def _missing_command(words: list[str]) -> str | None:
    """Why ``words`` would not run here, or None."""
    name = words[0]
    if name == "mlops":
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            return "not accepted by the mlops command line"
        return None
    if name in SHELL_BUILTINS or name in _console_scripts():
        return None
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return None if shutil.which(name, path=search) else "no such executable"


def test_command_words_are_split_like_a_shell() -> None:
    block = (
        'A=1 pip install -e . && mlops-exporter --demo  # start\ncurl -s x \\\n  | grep -E "a|b"\n'
    )
    assert _commands(block) == [
        ["pip", "install", "-e", "."], ["mlops-exporter", "--demo"], ["curl", "-s", "x"],
        ["grep", "-E", "a|b"],
    ]  # fmt: skip


def test_a_missing_command_or_mlops_subcommand_is_reported(capsys) -> None:
    assert _missing_command(["no-such-tool-4a8f", "x"]) == "no such executable"
    assert _missing_command(["mlops", "profile", "build", "x.csv"]) is not None  # needs -o
    assert _missing_command(["mlops", "frobnicate"]) is not None
    assert _missing_command(["mlops", "drift", "ref.csv", "cur.jsonl"]) is None
    capsys.readouterr()


def test_every_command_in_the_readme_sh_blocks_exists(capsys) -> None:
    blocks = _fenced_blocks(README.read_text(encoding="utf-8"), "sh")
    commands = [words for block in blocks for words in _commands(block)]
    assert len(commands) >= 4, "the README's sh blocks hold no commands"
    problems = [f"{shlex.join(w)}: {why}" for w in commands if (why := _missing_command(w))]
    capsys.readouterr()  # argparse's usage messages
    assert problems == []


def test_ci_checks_types_after_the_lint() -> None:
    """mypy runs in CI next to ruff, from the venv the test extra filled."""
    ci = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text("utf-8").splitlines()]
    assert "mypy mlops_core exporter" in ci
    assert ci.index("ruff check .") < ci.index("mypy mlops_core exporter")
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"mypy' in pyproject and '"types-PyYAML"' in pyproject and "[tool.mypy]" in pyproject


# --- the tests the docs cite ------------------------------------------------------------------

_TEST_FILE = r"(?:tests/)?[\w/]*test_\w+\.py"
_CITED = re.compile(rf"`({_TEST_FILE})?(?:::(\w+))?(?:\[[^\]`]*\])?`")


def _test_file(name: str) -> Path | None:
    """``tests/e2e/test_x.py``, or a bare ``test_x.py`` looked up in tests/ and tests/e2e/."""
    for candidate in (REPO_ROOT / name, REPO_ROOT / "tests" / name, REPO_ROOT / "tests/e2e" / name):
        if candidate.is_file():
            return candidate
    return None


def _lines_outside_code_blocks(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code kept (that is where tests are named)."""
    lines, fence = [], None
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if opened:
            mark = opened.group(1)[0]
            fence = None if fence == mark else (fence or mark)
        elif fence is None:
            lines.append(line)
    return lines


def missing_cited_tests(text: str) -> list[str]:
    """Each test file or test cited in backticks that does not exist.

    A ``::test_b`` alone continues a list of its line (``tests/e2e/test_x.py::test_a``,
    ``::test_b``): it is looked up in every test file the line cites, as a table row may cite
    an e2e file and its unit counterpart.  A line that cites no file cannot be checked
    against one: each ``::test`` must name its file somewhere on its own line.
    """
    missing = []
    for line in _lines_outside_code_blocks(text):
        files = [_test_file(f) for f in re.findall(rf"`({_TEST_FILE})", line)]
        for match in _CITED.finditer(line):
            file, name = match.group(1), match.group(2)
            if file and _test_file(file) is None:
                missing.append(file)
            elif name:
                sources = [f.read_text(encoding="utf-8") for f in files if f is not None]
                if not any(re.search(rf"^\s*(?:async )?def {name}\(", t, re.M) for t in sources):
                    missing.append(f"{file or ''}::{name}")
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_test_a_page_cites_exists(page: Path) -> None:
    """The failure tables (hardening.md, crash-safety.md, log-format.md) name the test that
    proves each fix: a renamed or deleted test must not leave a page citing nothing."""
    missing = missing_cited_tests(page.read_text(encoding="utf-8"))
    assert not missing, f"{page.name} cites tests that do not exist: {missing}"


def test_a_cited_test_that_does_not_exist_is_reported() -> None:
    row = "| x | `tests/test_docs.py::test_the_readme_is_a_few_screens`, `::{}` |"
    assert missing_cited_tests(row.format("test_github_slugs_follow_githubs_rules")) == []
    assert missing_cited_tests(row.format("test_nope")) == ["::test_nope"]
    assert missing_cited_tests("`tests/test_nope.py::test_x`") == ["tests/test_nope.py"]
    assert missing_cited_tests("| `::test_the_readme_is_a_few_screens` |") == [
        "::test_the_readme_is_a_few_screens"  # which file? the line must say
    ]
    assert missing_cited_tests("```\n`tests/test_nope.py`\n```") == []
