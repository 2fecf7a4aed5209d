"""Sphinx configuration of the documentation site (``make docs`` builds it into ``docs/_build/html``).

The source directory is the repository root, so that the markdown pages keep the relative links that also work
on GitHub (``docs/*.md`` link to ``../BENCHMARKS.md#...``, the README to ``docs/...``), and every such link and
its ``#anchor`` is checked by the build: ``make docs`` runs ``sphinx-build -W``, so a broken one fails it. Only
``README.md``, ``BENCHMARKS.md``, ``RELIABILITY.md`` and the markdown under ``docs/`` are read (MyST); the API
reference under ``docs/api/`` is generated from the docstrings by autodoc.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import mfg_envs  # noqa: E402

project = "mfg-envs"
author = "mfg-envs contributors"
copyright = "mfg-envs contributors"
release = version = mfg_envs.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# The sources: the repository root, restricted to the documentation pages.
root_doc = "docs/index"
source_suffix = {".md": "markdown"}
include_patterns = ["README.md", "BENCHMARKS.md", "RELIABILITY.md", "docs/**"]
exclude_patterns = ["docs/_build", ".venv", "venv", "runs", "logs", "build", "dist"]

# MyST: GitHub-style heading anchors down to ###, so that links to a heading of another page resolve (or fail the
# build).
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# Every reference to an object of these packages must resolve; references into the libraries they build on
# (numpy, torch, Gymnasium, Stable-Baselines3, ...) are not checked, since the build is offline (no intersphinx).
nitpicky = True
_EXTERNAL = (
    r"(np|numpy|th|torch|nn|gym|gymnasium|spaces|stable_baselines3|sb3|pettingzoo|matplotlib|plt|mpl|yaml|tqdm|rich"
    r"|argparse|collections|pathlib|typing|typing_extensions|types|abc|enum|os|io|re|csv|json|functools"
    r"|dataclasses|contextlib|numbers|builtins)\..*"
)
nitpick_ignore_regex = [(r"py:.*", _EXTERNAL)]

# autodoc: members in source order, signatures without the type hints (the docstrings say the types in words).
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
    "ignore-module-all": True,  # what a module defines, not what it re-exports (documented where defined)
}
autodoc_typehints = "none"
autodoc_inherit_docstrings = False  # our docstrings only (Gymnasium's and SB3's have their own format and sites)
autodoc_class_signature = "separated"
add_module_names = False

html_theme = "furo"
html_title = f"mfg-envs {release}"
html_static_path: list[str] = []
html_copy_source = False


# ------------------------------------------------------------------------------------------------- docstrings
# The env classes' docstrings follow Gymnasium's layout: markdown "## Section" headings and pipe tables (the tests
# read those tables). autodoc reads docstrings as reStructuredText, so they are turned into rubrics and list-tables.
_MD_HEADING = re.compile(r"^(\s*)#{2,6} +(.*?)\s*$")
_MD_ROW = re.compile(r"^(\s*)\|(.*)\|\s*$")
_MD_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
_MD_RULE = re.compile(r"^\s*:?-+:?\s*$")
_MD_CODE = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")


def _markdown_table(rows: list[str], indent: str) -> list[str]:
    cells = [[cell.strip() for cell in _MD_CELL_SEPARATOR.split(row.strip()[1:-1])] for row in rows]
    cells = [row for row in cells if not all(_MD_RULE.match(cell) for cell in row)]
    out = ["", f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
    for row in cells:
        for index, cell in enumerate(row):
            text = _MD_CODE.sub(r"``\1``", cell) or "\\"
            out.append(f"{indent}   {'* -' if index == 0 else '  -'} {text}")
    return [*out, ""]


def _markdown_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Gymnasium-style docstrings ("## Description", pipe tables) as reStructuredText, in place."""
    if not any(_MD_HEADING.match(line) for line in lines):
        return
    out: list[str] = []
    index = 0
    while index < len(lines):
        heading, row = _MD_HEADING.match(lines[index]), _MD_ROW.match(lines[index])
        if heading:
            out += ["", f"{heading.group(1)}.. rubric:: {heading.group(2)}", ""]
        elif row:
            rows = []
            while index < len(lines) and _MD_ROW.match(lines[index]):
                rows.append(lines[index])
                index += 1
            out += _markdown_table(rows, row.group(1))
            continue
        else:
            out.append(lines[index])
        index += 1
    lines[:] = out


# ------------------------------------------------------------------------------------------------- references
# Docstrings name objects as their readers import them: ``mfg_envs.NashGap`` (a re-export), ``PopulationVecEnv``
# (documented in another module). Such a reference resolves when it names exactly one documented object; any
# other stays unresolved and fails the build (nitpicky). Private names (a leading underscore) are not part of the
# reference, so references to them are not checked.
nitpick_ignore_regex.append((r"py:.*", r"(.*\.)?_\w+"))


def _import_path(dotted: str) -> Any:
    """The object at a dotted path (module, then attributes), or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_by_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    domain = env.get_domain("py")
    target = node["reftarget"].lstrip("~.")
    module = node.get("py:module") or ""
    found = []
    for dotted in (target, f"{module}.{target}"):  # a re-export: where the object is defined
        obj = _import_path(dotted) if dotted.split(".")[0] in ("mfg_envs", "sb3_meanfield") else None
        where = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if None not in where and f"{where[0]}.{where[1]}" in domain.objects:
            found.append(f"{where[0]}.{where[1]}")
    if not found:  # a name documented in another module of the packages, if only one has it
        found = [name for name in domain.objects if name.endswith(f".{target}")]
        if len(found) > 1:
            package = module.split(".")[0]
            found = [name for name in found if name.split(".")[0] == package]
    if len(set(found)) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], found[0], node, contnode)


# ------------------------------------------------------------------------------------------------- completeness
_API_DIR = Path(__file__).resolve().parent / "api"
_AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)", re.MULTILINE)


def _check_every_module_documented(app: Any, env: Any) -> None:
    """Every module of the two packages has a place in the API reference (docs/api/*.md)."""
    from sphinx.util import logging

    documented = {name for page in _API_DIR.glob("*.md") for name in _AUTOMODULE.findall(page.read_text())}
    for package in ("mfg_envs", "sb3_meanfield"):
        found = pkgutil.walk_packages([str(ROOT / package)], f"{package}.")
        modules = {package} | {info.name for info in found if not info.name.rsplit(".", 1)[-1].startswith("_")}
        for name in sorted(modules - documented):
            if name.endswith("__main__") or not (getattr(importlib.import_module(name), "__doc__", None) or ""):
                continue
            logging.getLogger(__name__).warning(f"module {name} is in no page of docs/api/ (add an automodule)")


def _write_root_redirect(app: Any, exception: Exception | None) -> None:
    """The sources are the repository root, so the site's front page is ``docs/index.html``: point ``index.html``
    at it."""
    if exception is None and app.builder.format == "html":
        target = app.builder.get_target_uri(root_doc)
        html = f'<!DOCTYPE html>\n<meta charset="utf-8">\n<meta http-equiv="refresh" content="0; url={target}">\n'
        (Path(app.outdir) / "index.html").write_text(html + f'<a href="{target}">{project}</a>\n')


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _markdown_docstring)
    app.connect("missing-reference", _resolve_by_name)
    app.connect("env-check-consistency", _check_every_module_documented)
    app.connect("build-finished", _write_root_redirect)
