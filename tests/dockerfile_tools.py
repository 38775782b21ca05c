"""Read a Dockerfile and a .dockerignore the way Docker does, without a Docker engine.

No engine runs on the development machines, so the deployment tests check the Dockerfile's
promises by reading it: which stages exist, what each COPY takes from the build context,
the ENTRYPOINT/CMD/HEALTHCHECK commands, and which files the context sends. The parser covers
the subset of the Dockerfile syntax this project uses (line continuations, comments, exec
form, ``key=value`` pairs, ``--flag=value`` options); anything else fails loudly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str  # upper-case: FROM, RUN, COPY ...
    args: str  # the rest of the logical line, continuations joined
    line: int  # 1-based line where the instruction starts


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def logical_lines(text: str) -> list[Instruction]:
    """Join ``\\`` continuations, drop comments and blank lines (as the Docker parser does)."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):  # comments inside a continuation are dropped
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        joined = " ".join(part for part in buf if part)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = []
    if buf:
        raise ValueError(f"Dockerfile ends inside a line continuation started at line {start}")
    return out


def parse_dockerfile(path: Path) -> list[Stage]:
    """The build stages in order; instructions before the first FROM (global ARGs) are dropped."""
    stages: list[Stage] = []
    for inst in logical_lines(path.read_text(encoding="utf-8")):
        if inst.keyword == "FROM":
            words = inst.args.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(inst)
    return stages


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """``--from=builder --chown=1:1 a b`` -> ({"from": "builder", "chown": "1:1"}, "a b")."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        key, _, value = word[2:].partition("=")
        flags[key] = value
        rest = rest.strip()
    return flags, rest


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK ... CMD)."""
    value = json.loads(args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not an exec-form JSON array of strings: {args}")
    return value


def key_values(args: str) -> dict[str, str]:
    """``LABEL``/``ENV`` pairs in the ``key=value`` form, with shell quoting."""
    out: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {word!r} (the legacy 'key value' form)")
        out[key] = value
    return out


def healthcheck(args: str) -> tuple[dict[str, str], list[str]]:
    """``--interval=30s ... CMD [...]`` -> (options, command)."""
    options, rest = split_flags(args)
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise ValueError(f"HEALTHCHECK without CMD: {args}")
    return options, exec_form(command.strip())


def copy_sources(inst: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY instruction."""
    flags, rest = split_flags(inst.args)
    words = exec_form(rest) if rest.startswith("[") else rest.split()
    return flags, words[:-1], words[-1]


# --- .dockerignore ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a "!" line: re-includes what matches


def _to_regex(pattern: str) -> re.Pattern[str]:
    """Docker's patternmatcher: ``*`` and ``?`` stop at ``/``, ``**`` crosses directories."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def read_dockerignore(path: Path) -> list[_Pattern]:
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = line[1:].strip() if exclusion else line
        cleaned = os.path.normpath(line).lstrip("/")
        patterns.append(_Pattern(_to_regex(cleaned), exclusion))
    return patterns


def is_ignored(relpath: str, patterns: list[_Pattern]) -> bool:
    """Whether Docker leaves ``relpath`` out of the build context (last matching line wins;
    a line matches a path or any of its parent directories)."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pat in patterns:
        if any(pat.regex.match(c) for c in candidates):
            ignored = not pat.exclusion
    return ignored


def build_context(repo: Path, dest: Path) -> list[str]:
    """Copy the files Docker would send as the build context into ``dest``; returns them."""
    patterns = read_dockerignore(repo / ".dockerignore")
    sent = []
    for root, dirs, files in os.walk(repo):
        rel_root = os.path.relpath(root, repo)
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if is_ignored(rel, patterns):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, target)
            sent.append(rel)
    return sorted(sent)
