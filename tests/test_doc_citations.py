"""Every reference to a repository file, in the code and in the docs, points at a file that exists.

Scanned: the ``.py`` and ``.md`` files of ``mfg_envs``, ``sb3_meanfield``, ``scripts``, ``tests`` and ``docs``,
and ``README.md``, ``BENCHMARKS.md``, ``RELIABILITY.md``. Two kinds of reference are checked:

- markdown links ``[text](target)`` with a relative target (``http(s)://`` links and same-page ``#anchor``
  links are skipped): the target must exist relative to the citing file and, for a ``.md`` target with an
  ``#anchor``, the anchor must be the GitHub slug of one of its headings;
- bare mentions of a file: any ``name.md`` or ``path/name.md``, and ``dir/name.py`` (a ``.py`` file with a
  directory, such as ``scripts/make_figures.py``). A mention resolves relative to the citing file or to the
  repository root; a bare file name without a directory may also name any scanned file (``sb3_meanfield.md``
  in a test about the docs). The value of a command-line option (``--markdown table.md``) names a file the
  command writes, not a reference, and is skipped.

So a citation of a document that is not in the repository (the derivation notes the models were built from,
say) fails here: cite ``docs/models.md`` or ``docs/design.md`` by section instead.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED_DIRS = ("mfg_envs", "sb3_meanfield", "scripts", "tests", "docs")
SCANNED_TOP_FILES = ("README.md", "BENCHMARKS.md", "RELIABILITY.md")

#: ``[text](target)`` (images included); the target is the first token inside the parentheses.
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
#: ``name.md`` / ``path/name.md`` anywhere, and ``.py`` files named with at least one directory.
BARE_MENTION = re.compile(
    r"(?<![\w./-])((?:\.{1,2}/)*(?:[A-Za-z0-9_][\w.-]*/)*[A-Za-z0-9_][\w.-]*\.md"
    r"|(?:\.{1,2}/)*(?:[A-Za-z0-9_][\w.-]*/)+[A-Za-z0-9_][\w.-]*\.py)(?![\w/-])"
)
#: A command-line option right before a mention: its value is an output file of the command.
OPTION_BEFORE = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*[ =]$")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


def scanned_files() -> list[Path]:
    """The scanned ``.py`` and ``.md`` files, except this one (its docstring describes dangling references)."""
    files = [ROOT / name for name in SCANNED_TOP_FILES if (ROOT / name).is_file()]
    for directory in SCANNED_DIRS:
        for path in sorted((ROOT / directory).rglob("*")):
            if path.suffix in (".py", ".md") and path.is_file() and "__pycache__" not in path.parts:
                files.append(path)
    this_file = Path(__file__).resolve()
    return [path for path in files if path.resolve() != this_file]


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: the rendered text, lower case, without punctuation, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of every heading of a markdown file (outside fenced code), duplicates numbered ``-1, -2``."""
    seen: dict[str, int] = {}
    result = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(result)


def resolves(citing: Path, target: str, names: frozenset[str], bare: bool) -> bool:
    """Whether ``target`` names an existing file: relative to ``citing``, to the root, or (a bare file name
    without a directory) as the name of a scanned file."""
    if (citing.parent / target).exists():
        return True
    if bare and (ROOT / target).exists():
        return True
    return bare and "/" not in target and target in names


def dangling_references(path: Path, text: str, names: frozenset[str]) -> list[str]:
    """``"file:line: reference (why)"`` for every reference in ``text`` (the contents of ``path``) that dangles."""
    problems = []
    label = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    for number, line in enumerate(text.splitlines(), start=1):
        for match in MARKDOWN_LINK.finditer(line):
            target = match.group(1)
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            if not resolves(path, file_part, names, bare=False):
                problems.append(f"{label}:{number}: link to a missing file: {target}")
            elif anchor and file_part.endswith(".md") and anchor not in anchors((path.parent / file_part).resolve()):
                problems.append(f"{label}:{number}: link to a missing heading: {target}")
        # link targets were checked above; blank them so they are not read again as bare mentions
        bare_text = MARKDOWN_LINK.sub(lambda m: m.group(0).replace(m.group(1), " " * len(m.group(1))), line)
        for match in BARE_MENTION.finditer(bare_text):
            if OPTION_BEFORE.search(bare_text, 0, match.start()):
                continue
            if not resolves(path, match.group(1), names, bare=True):
                problems.append(f"{label}:{number}: mention of a file not in the repository: {match.group(1)}")
    return problems


def test_dangling_reference_detection():
    """The checker itself: what it must flag and what it must accept."""
    names = frozenset(path.name for path in scanned_files())
    citing = ROOT / "docs" / "index.md"
    flagged = [
        "derived in MODELS.md",
        "see DESIGN.md 5.1",
        "[notes](../MODELS.md)",
        "[models](models.md#no-such-section)",
        "run scripts/no_such_script.py",
    ]
    for text in flagged:
        assert dangling_references(citing, text, names), text
    accepted = [
        "docs/models.md, section 'Generic scalar LQ best response'",
        "[models](models.md#generic-scalar-lq-best-response)",
        "[benchmarks](../BENCHMARKS.md#2-training-modes-self-play-against-the-representative-agent-scriptscompare_modespy)",
        "[site](https://example.org/MODELS.md) and [top](#environments)",
        "python scripts/make_figures.py; envs/MFGCrowd-v0.md; README.md",
        "python scripts/compare_modes.py --markdown table.md --out=report.md",
    ]
    for text in accepted:
        assert not dangling_references(citing, text, names), text


def test_every_file_reference_resolves():
    files = scanned_files()
    names = frozenset(path.name for path in files)
    problems = []
    for path in files:
        problems += dangling_references(path, path.read_text(encoding="utf-8"), names)
    assert not problems, "dangling references:\n" + "\n".join(problems)
