"""The lessons run on any laptop: no absolute paths and no POSIX-only shell lines in code cells.

A path such as `/tmp/figure.png` or `C:\\data` exists on one kind of machine only; a notebook
that needs a scratch folder takes one from `tempfile`, and data paths come from the package
(`default_data_root()`, `shipped.DATA_DIR`). Shell escapes (`!ls`, `%%bash`, `os.system`)
depend on the shell of the machine that runs them.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# A string literal (or f-string) that starts with an absolute or home-relative path.
QUOTED_PATH = re.compile(
    r"""(?<![\w.])[rbuRBUfF]{0,2}(["'])"""
    r"""(?P<path>(?:/(?:tmp|home|Users|usr|var|etc|opt|mnt|root|data)\b|~[/\\]|~(?=\1)|[A-Za-z]:[/\\])[^"'\n]*)\1"""
)
# Lines that hand work to the shell: IPython's ! and %%bash/%%sh, os.system, subprocess with a string.
SHELL_LINE = re.compile(r"^\s*(?:!(?!=)|%%?(?:bash|sh|system)\b).*$|\bos\.(?:system|popen)\(", re.M)


def portability_problems(source: str) -> list[str]:
    """The absolute paths and shell lines in the code `source`, as they are written there."""
    problems = [match.group("path") for match in QUOTED_PATH.finditer(source)]
    problems += [match.group().strip() for match in SHELL_LINE.finditer(source)]
    return problems


def notebook_problems(path: Path) -> list[str]:
    """'cell <index> (<id>): <path>' for every problem in the code cells of the notebook at `path`."""
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    return [f"cell {index} ({cell.get('id', '?')}): {problem}"
            for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for problem in portability_problems(cell.source)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_code_has_no_machine_specific_paths(path):
    problems = notebook_problems(path)
    assert not problems, f"{path.name} only runs on some machines: {problems}"


@pytest.mark.parametrize("source, expected", [
    ('fig.savefig("/tmp/x.png", dpi=80)', ["/tmp/x.png"]),
    ("open('/home/teacher/data.csv')", ["/home/teacher/data.csv"]),
    ('root = Path("~/datasets")', ["~/datasets"]),
    ('root = Path("~")', ["~"]),
    (r'load(r"C:\Users\me\coco")', [r"C:\Users\me\coco"]),
    ('load("D:/coco")', ["D:/coco"]),
    ('out = f"/tmp/{name}.png"', ["/tmp/{name}.png"]),
    ("!ls data", ["!ls data"]),
    ("%%bash\necho hi", ["%%bash"]),
    ('os.system("rm -rf build")', ["os.system("]),
])
def test_scanner_finds_machine_specific_code(source, expected):
    assert portability_problems(source) == expected


@pytest.mark.parametrize("source", [
    "folder = Path(tempfile.mkdtemp())\nfig.savefig(folder / 'x.png')",
    'x = a / b / 2  # division, not a path',
    'print(f"{n:,} anchors / {m} boxes")',
    'title = "ratio w/h"',
    'ax.set_xlabel("log10 of p")',
    "root = default_data_root() / 'val2017'",
    "value = not_a_shell != 1",
    "same = (a\n        != b)",
    'print("~ 3 ms per move")',
])
def test_scanner_leaves_portable_code_alone(source):
    assert portability_problems(source) == []


def test_a_planted_tmp_path_fails_naming_notebook_cell_and_path(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## Learning goals"),
                nbformat.v4.new_code_cell("import matplotlib.pyplot as plt"),
                nbformat.v4.new_code_cell('fig, ax = plt.subplots()\nfig.savefig("/tmp/x.png")')]
    planted = tmp_path / "99_planted.ipynb"
    nbformat.write(nb, planted)
    problems = notebook_problems(planted)
    assert problems == [f"cell 2 ({nb.cells[2].id}): /tmp/x.png"]
    with pytest.raises(AssertionError, match=r"99_planted\.ipynb .*cell 2 .*/tmp/x\.png"):
        test_notebook_code_has_no_machine_specific_paths(planted)
