"""Each env's page (docs/envs/<id>.md, "## Parameters") and class docstring ("## Arguments") agree with the code.

The page's table lists exactly the model's constructor keywords plus the env's own keywords (population size
and representation, rendering and, with several populations, the learner's population), each with the
constructor's default. The docstring's table names every model keyword, and any default it gives is the
constructor's.
"""

import ast
import inspect
import re
from pathlib import Path

import gymnasium as gym
import pytest

import mfg_envs

ROOT = Path(__file__).resolve().parent.parent
ENV_CLASSES = {**mfg_envs.ENV_CLASSES, **mfg_envs.MULTI_ENV_CLASSES}
#: Keywords that ``gym.make`` hands to the population core rather than to the model, with their defaults.
CORE_DEFAULTS = {"n_particles": 1000, "population_representation": "histogram", "kde_bandwidth": 1.0}
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # "\|" is a literal bar inside a cell
KEYWORD = re.compile(r"`+(\w+)`+")


def section(text, heading):
    """The lines under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def split_top_level(text):
    """``text`` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def parse_value(cell):
    """A default as written in a table: a Python literal, ``None`` or a bare word (a string)."""
    text = cell.strip().strip("`").strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def normalized(value):
    return tuple(normalized(item) for item in value) if isinstance(value, (tuple, list)) else value


def documented_defaults(text, heading):
    """``{keyword: default}`` from the table under ``heading`` (rows may name several keywords and defaults)."""
    rows = [line.strip() for line in section(text, heading).splitlines() if line.strip().startswith("|")]
    header = [cell.strip() for cell in CELL_SEPARATOR.split(rows[0].strip("|"))]
    assert header[0] == "keyword" and "default" in header, f"unexpected table header {header}"
    defaults = {}
    for row in rows[2:]:
        cells = CELL_SEPARATOR.split(row.strip("|"))
        names = KEYWORD.findall(cells[0])
        values = split_top_level(cells[header.index("default")]) if len(names) > 1 else [cells[header.index("default")]]
        assert len(values) == len(names), f"row {row!r}: {len(names)} keywords but {len(values)} defaults"
        for name, value in zip(names, values):
            assert name not in defaults, f"{name} is listed twice"
            defaults[name] = parse_value(value)
    return defaults


def model_defaults(env_class):
    parameters = inspect.signature(env_class.model_class.__init__).parameters
    assert tuple(parameters)[1:] == env_class.model_class.keywords()
    return {name: parameters[name].default for name in env_class.model_class.keywords()}


def env_defaults(env_class):
    """The keywords the env takes besides its model's, with their defaults."""
    parameters = inspect.signature(env_class.__init__).parameters
    own = {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}
    return {**CORE_DEFAULTS, **own}


def required_env_keywords(env_id, env_class):
    """The env keywords a page must list (``learner_population`` only where there are several populations)."""
    optional = () if env_id in mfg_envs.MULTI_ENV_CLASSES else ("learner_population",)
    return [name for name in env_defaults(env_class) if name not in optional]


def assert_defaults_match(documented, expected, where):
    wrong = {
        name: (documented[name], expected[name])
        for name in documented
        if name in expected and normalized(documented[name]) != normalized(expected[name])
    }
    assert not wrong, f"{where}: documented defaults differ from the code (documented, code): {wrong}"


@pytest.mark.parametrize("env_id", list(ENV_CLASSES))
def test_the_env_class_is_the_registered_one(env_id):
    assert gym.registry[env_id].entry_point is ENV_CLASSES[env_id]


@pytest.mark.parametrize("env_id", list(ENV_CLASSES))
def test_the_docs_page_lists_every_keyword_with_its_default(env_id):
    env_class = ENV_CLASSES[env_id]
    documented = documented_defaults((ROOT / "docs" / "envs" / f"{env_id}.md").read_text(), "Parameters")
    model, env = model_defaults(env_class), env_defaults(env_class)
    missing = [name for name in (*model, *required_env_keywords(env_id, env_class)) if name not in documented]
    unknown = [name for name in documented if name not in model and name not in env]
    assert not missing and not unknown, f"docs/envs/{env_id}.md: missing {missing}, not keywords {unknown}"
    assert_defaults_match(documented, {**env, **model}, f"docs/envs/{env_id}.md")


@pytest.mark.parametrize("env_id", list(ENV_CLASSES))
def test_the_docstring_names_every_model_keyword(env_id):
    env_class = ENV_CLASSES[env_id]
    documented = documented_defaults(inspect.getdoc(env_class), "Arguments")
    model, env = model_defaults(env_class), env_defaults(env_class)
    missing = [name for name in model if name not in documented]
    unknown = [name for name in documented if name not in model and name not in env]
    assert not missing and not unknown, f"{env_class.__name__} docstring: missing {missing}, not keywords {unknown}"
    assert_defaults_match(documented, {**env, **model}, f"{env_class.__name__} docstring")


@pytest.mark.parametrize("env_id", list(ENV_CLASSES))
def test_the_core_defaults_are_what_make_builds(env_id):
    env = gym.make(env_id).unwrapped
    populations = env.game.members if hasattr(env, "game") else [env.population]
    for population in populations:
        assert population.n_particles == CORE_DEFAULTS["n_particles"]
        assert population.representation == CORE_DEFAULTS["population_representation"]
        assert population.kde_bandwidth == CORE_DEFAULTS["kde_bandwidth"]
