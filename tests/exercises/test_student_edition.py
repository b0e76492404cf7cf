"""The student edition replaces solutions by stubs, keeps everything else, and still runs."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from retina_lessons.exercises import student_edition
from retina_lessons.exercises.student_edition import (
    find_exercises,
    make_student_edition,
    read_notebook,
    run_cell,
    run_exercises,
    strip_solutions,
    student_notebook,
)

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

SETUP = "import torch\n\nfrom retina_lessons import exercises"

BOX_IOU_EXERCISE = '''\
def my_box_iou(boxes1, boxes2):
    """IoU of every box in boxes1 (N, 4) with every box in boxes2 (M, 4)."""
    # BEGIN SOLUTION
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (area1[:, None] + area2[None, :] - inter)
    # END SOLUTION'''

NMS_EXERCISE = '''\
def my_nms(boxes, scores, iou_threshold):
    """Indices of the boxes that greedy NMS keeps, highest score first."""
    from torchvision.ops import box_iou

    # BEGIN SOLUTION
    iou = box_iou(boxes, boxes)  # (N, N)
    removed = torch.zeros(len(scores), dtype=torch.bool)
    keep = []
    for i in scores.argsort(descending=True).tolist():
        if not removed[i]:
            keep.append(i)
            removed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)
    # END SOLUTION'''


def _tagged(source, tag, **kwargs):
    return new_code_cell(source, metadata={"tags": [tag]}, **kwargs)


def build_lesson():
    """A small lesson in the series' layout with two exercises (box IoU and NMS)."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        new_markdown_cell("# Boxes\n\n## Learning goals\n\n- IoU\n- NMS"),
        new_code_cell("import torch\n\nboxes = torch.tensor([[0.0, 0.0, 2.0, 2.0]])"),
        new_markdown_cell("IoU is $\\frac{|A \\cap B|}{|A \\cup B|}$."),
        new_code_cell(
            "boxes.shape",
            execution_count=3,
            outputs=[new_output("execute_result", {"text/plain": "torch.Size([1, 4])"})],
        ),
        new_markdown_cell("## Summary\n\nIoU and NMS.\n\n## Exercises"),
        _tagged(SETUP, "exercise-setup"),
        new_markdown_cell("1. Write `my_box_iou`."),
        _tagged(BOX_IOU_EXERCISE, "exercise"),
        new_markdown_cell("Run the next cell to check your answer."),
        _tagged("exercises.check_box_iou(my_box_iou)", "check"),
        new_markdown_cell("2. Write `my_nms`."),
        _tagged(
            NMS_EXERCISE,
            "exercise",
            execution_count=7,
            outputs=[new_output("stream", name="stdout", text="teacher's run\n")],
        ),
        _tagged("exercises.check_nms(my_nms)", "check"),
    ]
    return nb


def build_plain_lesson():
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.cells = [
        new_markdown_cell("## Learning goals\n\n- nothing to solve here"),
        new_code_cell("x = 1  # END of the example, not a marker"),
    ]
    return nb


@pytest.fixture
def series(tmp_path):
    """A notebooks/ folder with a lesson, a lesson without exercises, and a subfolder."""
    src = tmp_path / "notebooks"
    (src / "extra").mkdir(parents=True)
    (src / ".ipynb_checkpoints").mkdir()
    nbformat.write(build_lesson(), src / "01_boxes.ipynb")
    nbformat.write(build_plain_lesson(), src / "02_plain.ipynb")
    nbformat.write(build_plain_lesson(), src / "extra" / "03_more.ipynb")
    nbformat.write(build_lesson(), src / ".ipynb_checkpoints" / "01_boxes-checkpoint.ipynb")
    return src


@pytest.fixture
def student(series, tmp_path):
    out = tmp_path / "student"
    written = make_student_edition(series, out)
    return out, written


def test_every_notebook_is_written_in_the_same_layout(series, student):
    out, written = student
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "01_boxes.ipynb",
        "02_plain.ipynb",
        "extra/03_more.ipynb",
    ]
    assert not (out / ".ipynb_checkpoints").exists()


def test_solutions_are_replaced_by_stubs(student):
    out, _ = student
    nb = read_notebook(out / "01_boxes.ipynb")
    iou_source, nms_source = nb.cells[7].source, nb.cells[11].source
    assert iou_source == (
        "def my_box_iou(boxes1, boxes2):\n"
        '    """IoU of every box in boxes1 (N, 4) with every box in boxes2 (M, 4)."""\n'
        "    # Your code here\n"
        '    raise NotImplementedError("Exercise: write my_box_iou")'
    )
    assert nms_source.endswith(
        "    from torchvision.ops import box_iou\n\n"
        "    # Your code here\n"
        '    raise NotImplementedError("Exercise: write my_nms")'
    )
    text = (out / "01_boxes.ipynb").read_text()
    for solution_line in (
        "clamp(min=0)",
        "argsort(descending=True)",
        "BEGIN SOLUTION",
        "END SOLUTION",
    ):
        assert solution_line not in text


def test_everything_else_is_identical(series, student):
    out, _ = student
    teacher = json.loads((series / "01_boxes.ipynb").read_text())
    pupil = json.loads((out / "01_boxes.ipynb").read_text())
    assert pupil["metadata"] == teacher["metadata"]
    assert (pupil["nbformat"], pupil["nbformat_minor"]) == (
        teacher["nbformat"],
        teacher["nbformat_minor"],
    )
    assert len(pupil["cells"]) == len(teacher["cells"])
    changed = []
    for index, (mine, theirs) in enumerate(zip(pupil["cells"], teacher["cells"], strict=True)):
        assert mine["id"] == theirs["id"] and mine["metadata"] == theirs["metadata"]
        if mine != theirs:
            changed.append(index)
            assert mine["source"] != theirs["source"]
            assert mine["outputs"] == [] and mine["execution_count"] is None
    assert changed == [7, 11]  # only the two exercise cells
    assert teacher["cells"][11]["outputs"], "the teacher's output is there to be dropped"
    assert pupil["cells"][3]["outputs"] == teacher["cells"][3]["outputs"]  # other outputs kept
    for name in ("02_plain.ipynb", "extra/03_more.ipynb"):
        assert (out / name).read_bytes() == (series / name).read_bytes()


def test_student_edition_cells_run_and_report_not_implemented(student):
    out, _ = student
    nb = read_notebook(out / "01_boxes.ipynb")
    results = run_exercises(nb)
    assert [r.exercise.function for r in results] == ["my_box_iou", "my_nms"]
    for result in results:
        assert result.value is False
        assert "not implemented yet" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_student_edition_cells_run_by_plain_exec(student):
    """Without the package's runner: exec the tagged cells' sources in a fresh namespace."""
    out, _ = student
    nb = read_notebook(out / "01_boxes.ipynb")
    namespace = {}
    exec(nb.cells[5].source, namespace)  # exercise-setup
    exec(nb.cells[7].source, namespace)  # exercise: defines the stub
    with pytest.raises(NotImplementedError, match="Exercise: write my_box_iou"):
        namespace["my_box_iou"](None, None)
    assert eval(nb.cells[9].source, namespace) is False  # the check cell


def test_teacher_solutions_pass_their_checks(series):
    results = run_exercises(read_notebook(series / "01_boxes.ipynb"))
    assert [r.value for r in results] == [True, True]
    assert results[0].output == "✓ box_iou: all 12 checks passed\n"
    assert results[1].output.startswith("✓ nms: all ")


def test_student_notebook_runs_top_to_bottom(student, capsys):
    """Run All in the student edition: the stubs only fail inside their checks."""
    out, _ = student
    nb = read_notebook(out / "01_boxes.ipynb")
    namespace = {}
    shown = [run_cell(cell.source, namespace) for cell in nb.cells if cell.cell_type == "code"]
    assert shown[-3:] == [False, None, False]  # check, exercise, check
    assert capsys.readouterr().out.count("not implemented yet") == 2


def test_find_exercises_reads_the_convention():
    exercises = find_exercises(build_lesson())
    assert [(e.function, e.exercise_index, e.check_index, e.checkers) for e in exercises] == [
        ("my_box_iou", 7, 9, ("check_box_iou",)),
        ("my_nms", 11, 12, ("check_nms",)),
    ]
    assert find_exercises(build_plain_lesson()) == []


def _broken(change):
    nb = build_lesson()
    change(nb.cells)
    return nb


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda cells: cells.pop(9), "the next code cell must be tagged 'check'"),
        (lambda cells: cells.pop(7), "must follow an 'exercise' cell"),
        (
            lambda cells: setattr(cells[9], "source", "exercises.check_boxiou(my_box_iou)"),
            "unknown checker ['check_boxiou']",
        ),
        (lambda cells: setattr(cells[9], "source", "my_box_iou"), "expected a call such as"),
        (
            lambda cells: setattr(
                cells[7], "source", BOX_IOU_EXERCISE + "\n\ndef helper():\n    pass"
            ),
            "exactly one function, found ['my_box_iou', 'helper']",
        ),
        (
            lambda cells: setattr(cells[7], "source", "def my_box_iou(a, b):\n    return a"),
            "needs a '# BEGIN SOLUTION' block",
        ),
        (
            lambda cells: cells.append(new_code_cell("my_box_iou(boxes, boxes)")),
            "uses the exercise function 'my_box_iou'",
        ),
        (
            lambda cells: setattr(cells[7], "source", "%time\n" + BOX_IOU_EXERCISE),
            "not plain Python",
        ),
    ],
    ids=[
        "no check",
        "check without exercise",
        "unknown checker",
        "no checker call",
        "two functions",
        "no solution",
        "used elsewhere",
        "magic",
    ],
)
def test_find_exercises_rejects_broken_markup(change, message):
    with pytest.raises(ValueError, match="cell") as err:
        find_exercises(_broken(change), where="01_boxes.ipynb")
    assert message in str(err.value)
    assert str(err.value).startswith("01_boxes.ipynb, cell ")


def test_strip_keeps_indentation_and_handles_several_blocks():
    source = (
        "def outer(x):\n"
        "    def inner(y):\n"
        "        # BEGIN SOLUTION\n"
        "        return y + 1\n"
        "        # END SOLUTION\n"
        "\n"
        "    # BEGIN SOLUTION\n"
        "    return inner(x)\n"
        "    # END SOLUTION\n"
    )
    assert strip_solutions(source) == (
        "def outer(x):\n"
        "    def inner(y):\n"
        "        # Your code here\n"
        '        raise NotImplementedError("Exercise: write inner")\n'
        "\n"
        "    # Your code here\n"
        '    raise NotImplementedError("Exercise: write inner")\n'
    )
    tabbed = "def f():\n\t# BEGIN SOLUTION\n\treturn 1\n\t# END SOLUTION"
    assert strip_solutions(tabbed) == (
        'def f():\n\t# Your code here\n\traise NotImplementedError("Exercise: write f")'
    )
    assert strip_solutions("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n") == (
        '# Your code here\nraise NotImplementedError("Exercise: your code here")\n'
    )
    assert strip_solutions("x = 1  # BEGIN SOLUTION is only a marker on its own line") == (
        "x = 1  # BEGIN SOLUTION is only a marker on its own line"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "line 2 is never closed"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "line 3 without a '# BEGIN SOLUTION'"),
        (
            "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
            "inside the block opened on line 1",
        ),
    ],
)
def test_strip_rejects_unbalanced_markers(source, message):
    with pytest.raises(ValueError, match="lesson.ipynb, cell 4") as err:
        strip_solutions(source, where="lesson.ipynb, cell 4")
    assert message in str(err.value)


def test_unbalanced_markers_stop_the_edition(series, tmp_path):
    nb = build_lesson()
    nb.cells[7].source = nb.cells[7].source.replace("    # END SOLUTION", "")
    nbformat.write(nb, series / "01_boxes.ipynb")
    with pytest.raises(ValueError, match=r"01_boxes.ipynb, cell 7 \(id .*\): '# BEGIN SOLUTION'"):
        make_student_edition(series, tmp_path / "student")


def test_student_notebook_leaves_the_teacher_notebook_alone():
    nb = build_lesson()
    before = nbformat.writes(nb)
    student_notebook(nb)
    assert nbformat.writes(nb) == before


@pytest.mark.parametrize("inside", [".", "student", "deep/er"])
def test_refuses_an_out_dir_inside_the_notebooks(series, inside):
    with pytest.raises(ValueError, match="inside the notebooks folder"):
        make_student_edition(series, series / inside)
    assert not (series / "student").exists()


def test_creates_missing_out_dir_and_overwrites(series, tmp_path):
    out = tmp_path / "a" / "b" / "student"
    make_student_edition(series, out)
    first = (out / "01_boxes.ipynb").read_bytes()
    make_student_edition(series, out)
    assert (out / "01_boxes.ipynb").read_bytes() == first


def test_refuses_a_missing_notebooks_folder(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        make_student_edition(tmp_path / "nowhere", tmp_path / "student")


def test_command_line(series, tmp_path, capsys):
    out = tmp_path / "student"
    assert student_edition.main([str(out), "--notebooks", str(series)]) == 0
    assert f"wrote 3 notebooks with 2 exercise stubs to {out}" in capsys.readouterr().out
    assert (out / "01_boxes.ipynb").is_file()
    with pytest.raises(SystemExit) as exit_info:
        student_edition.main([str(series / "student"), "--notebooks", str(series)])
    assert exit_info.value.code == 2
    assert "inside the notebooks folder" in capsys.readouterr().err


def test_default_notebooks_folder_is_the_repositorys():
    assert student_edition.DEFAULT_NOTEBOOKS.name == "notebooks"
    assert (student_edition.DEFAULT_NOTEBOOKS.parent / "retina_lessons").is_dir()
