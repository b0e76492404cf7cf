"""The ways to install and run the project agree with each other.

pyproject.toml (uv), environment.yml (conda, Binder), the README's Quick start and
.ci/run describe the same environment and the same commands; these tests keep them
from drifting apart.
"""

import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# Distributions whose conda-forge name differs from their PyPI name.
PYPI_TO_CONDA = {"torch": "pytorch"}
# Entries environment.yml needs that are not Python dependencies of the package.
CONDA_ONLY = {"python", "pip"}


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def conda_env():
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def readme():
    return (ROOT / "README.md").read_text(encoding="utf-8")


def conda_specs(conda_env):
    """environment.yml's conda dependencies as {name: SpecifierSet}."""
    specs = {}
    for entry in conda_env["dependencies"]:
        if isinstance(entry, str):
            name, _, spec = entry.partition(" ")
            specs[name] = SpecifierSet(spec.replace(" ", ""))
    return specs


def quick_start_commands(readme):
    """The commands in the fenced code block of the README's Quick start section."""
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, flags=re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"^```[a-z]*\n(.*?)^```", section.group(1), flags=re.M | re.S)
    assert block, "README.md's Quick start has no fenced code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_conda_dependencies_match_pyproject(pyproject, conda_env):
    conda = conda_specs(conda_env)
    expected = {}
    for line in pyproject["project"]["dependencies"]:
        req = Requirement(line)
        expected[PYPI_TO_CONDA.get(req.name, req.name)] = req.specifier
    # nbgrader is a development dependency in pyproject.toml and listed in environment.yml for teachers' hubs
    dev = {Requirement(line).name for line in pyproject["dependency-groups"]["dev"]}
    assert "nbgrader" in dev and "nbgrader" in conda
    actual = {name: spec for name, spec in conda.items() if name not in CONDA_ONLY and name != "nbgrader"}
    assert sorted(actual) == sorted(expected), (
        "environment.yml and pyproject.toml list different dependencies: "
        f"only in environment.yml {sorted(set(actual) - set(expected))}, "
        f"only in pyproject.toml {sorted(set(expected) - set(actual))}"
    )
    for name, spec in expected.items():
        assert actual[name] == spec, f"{name}: environment.yml {actual[name]}, pyproject {spec}"


def test_conda_python_bound_matches_requires_python(pyproject, conda_env):
    requires_python = SpecifierSet(pyproject["project"]["requires-python"])
    assert conda_specs(conda_env)["python"] == requires_python


def test_conda_environment_installs_the_package(conda_env):
    assert conda_env["channels"][0] == "conda-forge"
    pip_sections = [e["pip"] for e in conda_env["dependencies"] if isinstance(e, dict)]
    assert pip_sections == [["-e ."]]


def test_readme_quick_start_has_exactly_two_commands(readme):
    commands = quick_start_commands(readme)
    assert commands == ["uv run jupyter lab notebooks/00_overview.ipynb", "uv run pytest"]


def test_ci_runs_the_readme_test_command(readme):
    test_command = quick_start_commands(readme)[-1]
    script = ROOT / ".ci" / "run"
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text.splitlines()
    assert os.access(script, os.X_OK), ".ci/run is not executable"
    ran = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert test_command in ran, f".ci/run does not run {test_command!r}"


def test_readme_lists_every_notebook(readme):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [nb.name for nb in notebooks if f"notebooks/{nb.name}" not in readme]
    assert not missing, f"README.md's lesson table does not link {missing}"


def test_quick_start_notebook_exists(readme):
    if not any((ROOT / "notebooks").glob("*.ipynb")):
        pytest.skip("no notebooks yet")
    first_command = quick_start_commands(readme)[0]
    notebook = first_command.split()[-1]
    assert (ROOT / notebook).is_file(), f"the Quick start opens {notebook}, which does not exist"


def test_rendered_html_folder_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/rendered/" in ignored or "rendered/" in ignored


def test_pytest_collects_tests_and_notebooks_only(pyproject):
    options = pyproject["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests", "notebooks"]
    assert "--nbmake" in options["addopts"].split()
    assert {"benchmarks", "data", "rendered"} <= set(options["norecursedirs"])
