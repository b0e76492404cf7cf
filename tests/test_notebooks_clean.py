"""The lesson notebooks are committed clean, follow the lesson layout, and stay offline.

Clean means valid nbformat with no outputs, no execution counts and no metadata that
depends on the machine that last ran the notebook. The layout is a Markdown cell with
"## Learning goals" first, and "Summary" and "Exercises" headings.

To clean notebooks after running them:

    uv run python tests/test_notebooks_clean.py notebooks/*.ipynb
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGE_FILES = sorted((ROOT / "retina_lessons").rglob("*.py"))

NAME_PATTERN = re.compile(r"(\d{2})_[a-z0-9]+(_[a-z0-9]+)*\.ipynb")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
NOTEBOOK_METADATA = {"kernelspec", "language_info"}
CELL_METADATA = {"tags", "slideshow", "editable", "deletable"}

LEARNING_GOALS = re.compile(r"^## Learning goals\s*$", re.M)
SUMMARY = re.compile(r"^#{1,6} +Summary\b", re.M)
EXERCISES = re.compile(r"^#{1,6} +Exercises\b", re.M)
# Calls that fetch from the network: the package and the lessons run offline.
NETWORK = (
    r"download\s*=\s*True|\burlopen\b|\burlretrieve\b|\brequests\.|load_state_dict_from_url"
    r"|download_url_to_file|\btorch\.hub\.load\(|^\s*[!%]pip\b"
)
PACKAGE_NETWORK = re.compile(NETWORK, re.M)
# Notebooks also may not fetch torchvision's pretrained weights (`Weights.X.get_state_dict`);
# the package may, in a loader that runs only when a user asks for it.
NOTEBOOK_NETWORK = re.compile(NETWORK + r"|\.get_state_dict\(", re.M)


def read(path):
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=nbformat.NO_CONVERT)


def strip_notebook(nb):
    """Remove outputs, execution counts and machine-specific metadata, in place."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in CELL_METADATA}
    language = nb.metadata.get("language_info", {}).get("name", "python")
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": language}}
    return nb


def markdown(nb):
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


notebook_params = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])


def test_notebook_file_names_are_numbered_uniquely():
    names = [path.name for path in NOTEBOOKS]
    bad = [name for name in names if not NAME_PATTERN.fullmatch(name)]
    assert not bad, f"notebook names must look like NN_name.ipynb (lower case): {bad}"
    numbers = [name[:2] for name in names]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not repeated, f"notebook numbers used more than once: {repeated}"


@notebook_params
def test_notebook_is_valid_nbformat(path):
    nb = read(path)
    assert nb.nbformat == 4
    nbformat.validate(nb)


@notebook_params
def test_notebook_has_no_outputs(path):
    code_cells = [cell for cell in read(path).cells if cell.cell_type == "code"]
    with_outputs = [i for i, cell in enumerate(code_cells) if cell.outputs]
    counted = [i for i, cell in enumerate(code_cells) if cell.execution_count is not None]
    hint = f"clean it with `uv run python tests/test_notebooks_clean.py {path.relative_to(ROOT)}`"
    assert not with_outputs, f"code cells {with_outputs} have outputs; {hint}"
    assert not counted, f"code cells {counted} have execution counts; {hint}"


@notebook_params
def test_notebook_has_no_machine_specific_metadata(path):
    nb = read(path)
    assert set(nb.metadata) <= NOTEBOOK_METADATA, f"notebook metadata {sorted(nb.metadata)}"
    assert nb.metadata.get("kernelspec") == KERNELSPEC
    assert set(nb.metadata.get("language_info", {})) <= {"name"}
    for i, cell in enumerate(nb.cells):
        extra = sorted(set(cell.metadata) - CELL_METADATA)
        assert not extra, f"cell {i} has metadata {extra}; allowed: {sorted(CELL_METADATA)}"


@notebook_params
def test_notebook_starts_with_learning_goals(path):
    first = read(path).cells[0]
    assert first.cell_type == "markdown", "the first cell must be Markdown"
    assert LEARNING_GOALS.search(first.source), "the first cell needs a '## Learning goals' heading"


@notebook_params
def test_notebook_ends_with_summary_and_exercises(path):
    text = markdown(read(path))
    assert SUMMARY.search(text), "no 'Summary' heading"
    assert EXERCISES.search(text), "no 'Exercises' heading"


@notebook_params
def test_notebook_code_stays_offline(path):
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type == "code":
            hit = NOTEBOOK_NETWORK.search(cell.source)
            assert hit is None, f"cell {i} reaches for the network: {hit.group()!r}"


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=[p.name for p in PACKAGE_FILES])
def test_package_code_stays_offline(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    hit = PACKAGE_NETWORK.search(code)
    assert hit is None, f"{path.name} reaches for the network: {hit.group()!r}"


def test_strip_notebook_cleans_an_executed_notebook():
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": KERNELSPEC,
            "language_info": {"name": "python", "version": "3.11.7"},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        }
    )
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Learning goals"),
        nbformat.v4.new_code_cell(
            "1 + 1",
            execution_count=3,
            outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"})],
            metadata={"execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}, "tags": ["x"]},
        ),
    ]
    strip_notebook(nb)
    nbformat.validate(nb)
    assert nb.metadata == {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    code = nb.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["x"]}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        notebook_path = Path(arg)
        nbformat.write(strip_notebook(read(notebook_path)), notebook_path)
        print(f"cleaned {notebook_path}")
