"""The documentation's Python examples run as written: README.md, docs/*.md and docs/envs/*.md.

The ```python blocks of one file run in order in one namespace (later blocks use names of earlier ones),
except the README's: each of those runs in a fresh namespace, as a reader pasting it alone would run it. All run
in a temporary working directory so that examples that write files leave nothing behind. Links from the docs
(and the README's links into docs/) must resolve.
"""

import os
import re
from pathlib import Path

import pytest
import torch as th

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "envs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def python_blocks(path):
    return PYTHON_BLOCK.findall(path.read_text())


def test_the_docs_exist_and_have_examples():
    names = {path.relative_to(ROOT).as_posix() for path in DOCUMENTS}
    import mfg_envs

    assert {f"docs/envs/{env_id}.md" for env_id in mfg_envs.ENV_IDS + mfg_envs.MULTI_ENV_IDS} <= names
    assert {"docs/index.md", "docs/sb3_meanfield.md"} <= names
    for path in DOCUMENTS:
        if path.parent.name == "envs" or path.name == "sb3_meanfield.md":
            assert python_blocks(path), f"{path.name} has no python example"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_python_examples_run(path, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(path)
    if not blocks:
        pytest.skip("no python example")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = th.get_num_threads()
    th.set_num_threads(1)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for index, block in enumerate(blocks):
            if path.name == "README.md":  # each README example must run pasted alone: its own imports
                namespace = {"__name__": "__docs__"}
            exec(compile(block, f"{path.name} block {index + 1}", "exec"), namespace)
    finally:
        th.set_num_threads(threads)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    for target in LINK.findall(path.read_text()):
        if "://" in target or (path.name == "README.md" and not target.startswith("docs/")):
            continue  # README's other links are the lead's
        assert (path.parent / target).exists(), f"{path.name} links to a missing file: {target}"


def test_commands_in_the_docs_name_existing_scripts():
    scripts = set(re.findall(r"python (scripts/\w+\.py)", "\n".join(p.read_text() for p in DOCUMENTS)))
    missing = [script for script in scripts if not (ROOT / script).is_file()]
    assert not missing and os.path.isdir(ROOT / "scripts")
