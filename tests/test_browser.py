"""The explorers where students use them: JupyterLab in a real (headless) browser.

For each notebook with an explorer, the test starts a private JupyterLab, opens the notebook in
Debian's Chromium, runs every cell with JupyterLab's "Run All Cells" (as a student would), waits
for the widgets to show, then moves sliders with the keyboard (focus the slider's handle, press
an arrow key: one step) and checks that

- every code cell ran, and no cell shows an error or a traceback (neither in the notebook's
  outputs nor among the kernel's messages, which also carry errors raised in slider callbacks);
- each move changes the picture the explorer draws (the bytes of its <img>, and a screenshot);
- the notebook file on disk is left as it was.

It prints the time "Run All Cells" took and the latency a student sees: from the key press to
the new picture decoded and painted, over `NUM_TIMED_MOVES` moves. Screenshots of each explorer
before and after the moves go to the git-ignored folder `screenshots/`.

Which notebooks: those listed in `EXPLORER_SLIDERS` (a listed notebook that is missing fails).
`test_every_widget_notebook_is_listed` keeps the list in sync: a notebook whose code displays
widgets (it mentions ipywidgets, calls `.widget()` or an `*_explorer(...)` function other than a
`draw_*` one) must be listed there, or in `NO_PICTURE` with the reason it has no explorer.

Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`; `.ci/run` installs it).
Without it these tests fail, saying so. Run only these: `uv run pytest tests/test_browser.py`;
everything but these: `uv run pytest -m "not browser"`.
"""

import contextlib
import re
import statistics
import time

import nbformat
import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_MISSING,
    ROOT,
    SCREENSHOTS,
    NotebookPage,
    chromium,
    first_key,
    jupyter_lab,
    time_moves,
)

NOTEBOOKS = ROOT / "notebooks"

# Notebook -> the labels of the sliders to move in its explorers (None: the first slider of each).
EXPLORER_SLIDERS = {
    "05_matching_and_box_coding.ipynb": ("fg IoU >=",),  # the anchor explorer
    "06_focal_loss.ipynb": ("γ (gamma)", "α (alpha)"),  # the focal loss explorer
    "08_inference.ipynb": ("score >=", "NMS IoU"),  # the predictions explorer
}
# Notebooks with widgets but no explorer (no slider that redraws a picture), and why.
NO_PICTURE = {
    "00_overview.ipynb": "its one slider prints the size of a pyramid level as text",
}
NUM_TIMED_MOVES = 5

WIDGET_CODE = re.compile(r"\bipywidgets\b|\.widget\(|\b(\w+)_explorer\(")


def displays_widget(notebook) -> bool:
    """True if a code cell imports ipywidgets, calls `.widget()` or an `*_explorer(...)` (not `draw_*`)."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for match in WIDGET_CODE.finditer(cell.source):
            if not (match.group(1) or "").startswith("draw"):
                return True
    return False


def test_every_widget_notebook_is_listed():
    with_widgets = {path.name for path in sorted(NOTEBOOKS.glob("*.ipynb")) if displays_widget(path)}
    unlisted = sorted(with_widgets - set(EXPLORER_SLIDERS) - set(NO_PICTURE))
    assert not unlisted, (f"{unlisted} display widgets: add them to EXPLORER_SLIDERS in "
                          f"{__file__} so that they are tested in the browser (or to NO_PICTURE)")
    stale = sorted(set(NO_PICTURE) - with_widgets)
    assert not stale, f"{stale} show no widgets (any more): remove them from NO_PICTURE"


# ----------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, or None when it is not installed (the test then fails, saying so)."""
    if not CHROMIUM.exists():
        yield None
        return
    with chromium() as context:
        yield context


@pytest.fixture(scope="module")
def lab(browser):
    """A private JupyterLab serving the repository, shut down (kernels included) afterwards."""
    if browser is None:
        yield None
        return
    with jupyter_lab(ROOT) as server:
        yield server


def check_cells(page: NotebookPage, name: str) -> None:
    """Every code cell ran, none shows an error, and at least one displays a widget."""
    cells = page.cell_report()
    problems = [f"cell {c['index']}: {p}" for c in cells for p in c["problems"]]
    assert not problems, f"{name}: cells report errors:\n" + "\n".join(problems)
    not_run = [c["index"] for c in cells if c["executionCount"] is None]
    assert not not_run, f"{name}: cells {not_run} did not run"
    assert not page.error_texts(), f"{name}: the page shows errors: {page.error_texts()}"
    assert any(c["widgets"] for c in cells), f"{name}: no cell displays a widget"


def exercise_explorer(page: NotebookPage, region, label: str, wanted) -> tuple[set, list[str]]:
    """Move the `wanted` sliders of one explorer (or its first slider), check the picture changes
    with each, save screenshots, then time `NUM_TIMED_MOVES` moves of each. Returns the labels
    moved and lines to print."""
    sliders = page.sliders(region)
    chosen = [s for s in sliders if s.label in wanted] if wanted else sliders[:1]
    assert chosen, f"{label}: none of the sliders {wanted} (found {[s.label for s in sliders]})"
    region.evaluate("e => e.scrollIntoView({block: 'start'})")  # as much of it as fits
    before_png = region.screenshot(path=SCREENSHOTS / f"{label}-before.png")
    for slider in chosen:
        before = page.picture_digest(region)
        key = first_key(slider)
        page.move(region, slider, key)
        assert page.picture_digest(region) != before, (
            f"{label}: {key} on slider {slider.label!r} left the picture as it was")
    after_png = region.screenshot(path=SCREENSHOTS / f"{label}-after.png")
    assert after_png != before_png, f"{label}: the screenshot did not change"

    names = {s.label for s in chosen}
    lines = []
    for slider in page.sliders(region):  # re-read: the timed moves start where the sliders are now
        if slider.label in names:
            latencies = [m.latency_ms for m in
                         time_moves(page, region, slider, NUM_TIMED_MOVES, first_key(slider))]
            lines.append(f"  {label}, slider {slider.label!r}: slider move -> new picture shown: "
                         f"median {statistics.median(latencies):.0f} ms, min {min(latencies):.0f}, "
                         f"max {max(latencies):.0f} ({len(latencies)} moves)")
    return names, lines


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(EXPLORER_SLIDERS))
def test_explorer_in_jupyterlab(name, browser, lab, capsys):
    if browser is None:
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    notebook = NOTEBOOKS / name
    assert notebook.exists(), f"{name} is listed in EXPLORER_SLIDERS but {notebook} does not exist"
    on_disk = notebook.read_bytes()
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob(f"{notebook.stem}-*.png"):  # from an earlier run
        old.unlink()
    wanted = EXPLORER_SLIDERS[name]
    timings, lines = {}, []
    page = NotebookPage(browser, lab, notebook)
    try:
        start = time.perf_counter()
        page.open()
        timings["open"] = time.perf_counter() - start
        timings["Run All Cells"] = page.run_all_cells()
        assert not page.kernel_died(), f"{name}: the kernel died while running the cells"
        check_cells(page, name)

        start = time.perf_counter()
        regions = page.explorers()
        assert regions, f"{name}: no explorer (a cell output with a slider and a picture) appeared"
        moved = set()
        for i, region in enumerate(regions):
            names, explorer_lines = exercise_explorer(page, region, f"{notebook.stem}-explorer{i}", wanted)
            moved |= names
            lines += explorer_lines
        if wanted:
            assert moved == set(wanted), f"{name}: sliders {set(wanted) - moved} not found in any explorer"
        timings["moves"] = time.perf_counter() - start

        errors = [m for m in page.kernel_messages() if re.search(r"Error|Traceback", m)]
        assert not errors, f"{name}: the kernel reported errors:\n" + "\n".join(errors)
        assert not page.error_texts(), f"{name}: the page shows errors: {page.error_texts()}"
    except BaseException:
        with contextlib.suppress(Exception):  # what the page looked like, for the reader
            page.page.screenshot(path=SCREENSHOTS / f"{notebook.stem}-failed.png")
        raise
    finally:
        page.close()
        with capsys.disabled():
            print(f"\n{name} in JupyterLab + Chromium: "
                  + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items()))
            print("\n".join(lines))
    assert notebook.read_bytes() == on_disk, f"{name} was changed on disk by running it in JupyterLab"
