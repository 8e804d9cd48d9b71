"""The grader on a class of submissions: right, stubbed, wrong, partly right, and
ones that crash, loop for ever, print megabytes, hog memory, exit, or try to
delete other people's files.  Each must get exactly its marks and a clear
feedback line, without touching anyone else's result.

Most tests use a tiny NumPy-only assignment (each submission runs in about a
second); one grades the real solutions and student copies of notebooks 01 and 03.
"""
from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cab420utils import profiles
from cab420utils.grading import grader
from cab420utils.grading.notebooks import student_notebook

ROOT = Path(__file__).resolve().parents[1]

ASSIGNMENT_TOML = """
title = "Tiny assignment"
notebook = "tiny.ipynb"
execute = "{execute}"
time_limit = 15
cell_time_limit = 4
test_time_limit = 3
memory_limit_mb = 1024
output_limit_chars = 1000

[[exercise]]
id = "A"
name = "add"
points = 1
function = "add"
tests = "test_add.py"

[[exercise]]
id = "B"
name = "scale"
points = 1
tests = "test_scale.py"

[[exercise]]
id = "C"
name = "mean"
points = 1
tests = "test_mean.py"

[[exercise]]
id = "D"
name = "reverse"
points = 1
tests = "test_reverse.py"
"""

HIDDEN_TESTS = {
    "test_add.py": '''
def test_small(student):
    """adds two small numbers"""
    assert student.add(1, 2) == 3, f"add(1, 2) should be 3, got {student.add(1, 2)}"

def test_negative(student):
    """adds negative numbers"""
    assert student.add(-1, -5) == -6, "add(-1, -5) should be -6"
''',
    "test_scale.py": '''
import numpy as np

def test_values(student):
    """multiplies every entry"""
    assert np.allclose(student.scale([1, 2], 3), [3, 6]), "scale([1, 2], 3) should be [3, 6]"

def test_shape(student):
    """keeps the shape"""
    assert np.shape(student.scale(np.ones((2, 3)), 2)) == (2, 3), "the shape changed"
''',
    "test_mean.py": '''
def test_values(student):
    """the mean of a few numbers"""
    assert student.mean([1, 2, 3, 6]) == 3, "mean([1, 2, 3, 6]) should be 3"

def test_single(student):
    """the mean of one number"""
    assert student.mean([5]) == 5, "mean([5]) should be 5"
''',
    "test_reverse.py": '''
def test_list(student):
    """reverses a list"""
    assert list(student.reverse([1, 2, 3])) == [3, 2, 1], "reverse([1, 2, 3]) should be [3, 2, 1]"

def test_empty(student):
    """reverses an empty list"""
    assert list(student.reverse([])) == [], "reverse([]) should be []"
''',
}

RIGHT = {
    "add": "def add(a, b):\n    return a + b",
    "scale": "def scale(x, factor):\n    return np.asarray(x) * factor",
    "mean": "def mean(values):\n    return float(np.mean(values))",
    "reverse": "def reverse(values):\n    return values[::-1]",
}


def code(source, *tags):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def markdown(source, *tags):
    cell = nbformat.v4.new_markdown_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def solution_notebook():
    """The tiny assignment's solution, marked up like the course's."""
    def exercise(name):
        head, body = RIGHT[name].split("\n", 1)
        return code(f"{head}\n    ### BEGIN SOLUTION (hint: one line does it)\n{body}\n    ### END SOLUTION",
                    "solution")

    nb = nbformat.v4.new_notebook()
    nb.cells = [code("import numpy as np"), exercise("add"),
                code("try:\n    print('add(1, 2) =', add(1, 2))\n"
                     "except NotImplementedError:\n    print('not written yet')", "check"),
                exercise("scale"), exercise("mean"), exercise("reverse"),
                markdown("**Question.** Why add?"), markdown("Because.", "written"),
                code("assert add(1, 2) == 3", "solution-only")]
    return nb


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [code(s) for s in sources]
    return nb


def right(*names):
    return [RIGHT[n] for n in names]


@pytest.fixture
def tiny(tmp_path):
    """``(assignment folder, submissions folder)`` of the tiny assignment, execute='all'."""
    return make_assignment(tmp_path, "all")


def make_assignment(tmp_path, execute):
    folder = tmp_path / "assignment"
    folder.mkdir()
    (folder / "assignment.toml").write_text(ASSIGNMENT_TOML.format(execute=execute))
    for name, text in HIDDEN_TESTS.items():
        (folder / name).write_text(text)
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    return folder, submissions


def write(submissions, student, nb):
    path = submissions / f"{student}.ipynb"
    nbformat.write(nb, path)
    return path


def marks_of(path):
    with open(path, newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_a_class_of_submissions(tiny, tmp_path):
    folder, subs = tiny
    solution = solution_notebook()
    correct = write(subs, "correct", solution)
    write(subs, "stubbed", nbformat.from_dict(student_notebook(solution)))
    write(subs, "wrong", notebook("import numpy as np", "def add(a, b):\n    return a - b",
                                  "def scale(x, f):\n    return [0]", "def mean(v):\n    return 0",
                                  "def reverse(v):\n    return list(v) + [0]"))
    write(subs, "partial", notebook("import numpy as np", RIGHT["add"], "def scale(x, f):\n    return [0]",
                                    "def mean(v):\n    raise ValueError('no idea')",
                                    "def reverse(v):\n    while True:\n        pass"))
    write(subs, "crash_at_import", notebook("import not_a_real_module_xyz\nimport numpy as np", *right(*RIGHT)))
    write(subs, "loops_for_ever", notebook("import numpy as np", "while True:\n    pass", *right(*RIGHT)))
    write(subs, "ignores_alarms", notebook("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                           "while True:\n    pass"))
    write(subs, "prints_10mb", notebook("import numpy as np", "for _ in range(10):\n    print('x' * 1_000_000)",
                                        *right(*RIGHT)))
    write(subs, "deletes_files", notebook(
        "import glob, os, shutil\nimport numpy as np",
        f"os.remove({str(correct)!r})",  # another student's submission, by its real path: refused
        "print(glob.glob('../../*/work/*.ipynb'))",  # listing the other sandboxes: refused (glob finds nothing)
        "for k in range(14):\n    try:\n        os.remove(f'../../{k:04d}/work/submission.ipynb')\n"
        "    except OSError:\n        pass",  # every staged copy, its own included: others' are refused
        "shutil.rmtree(os.path.dirname(os.path.dirname(os.getcwd())))",  # all the sandboxes: refused
        "os.kill(os.getppid(), 9)",  # the grader itself: refused
        "shutil.rmtree(os.path.dirname(os.getcwd()))",  # its own sandbox: allowed, harms no one else
        *right(*RIGHT)))
    write(subs, "hogs_memory", notebook("import numpy as np", "def add(a, b):\n    big = np.ones(2 ** 31)\n"
                                        "    return a + b", *right("scale", "mean", "reverse")))
    write(subs, "exits", notebook("import os\nos._exit(3)"))
    (subs / "corrupt.ipynb").write_text("{this is not json")
    (subs / "malformed.ipynb").write_text(json.dumps({"cells": [1, "two"], "nbformat": 4}))
    (subs / "in_a_folder").mkdir()
    write(subs / "in_a_folder", "tiny", notebook("import numpy as np", *right(*RIGHT)))

    assignment = grader.Assignment.load(folder)
    results = {r.student: r for r in grader.grade(assignment, subs, progress=None)}
    out = tmp_path / "out"
    grader.write_marks(assignment, list(results.values()), out / "marks.csv")
    grader.write_feedback(assignment, list(results.values()), out / "feedback")
    marks = marks_of(out / "marks.csv")
    feedback = {s: (out / "feedback" / f"{s}.md").read_text() for s in marks}

    expected = {  # A add, B scale, C mean, D reverse; total
        "correct": (1, 1, 1, 1, 4), "in_a_folder": (1, 1, 1, 1, 4), "stubbed": (0, 0, 0, 0, 0),
        "wrong": (0, 0, 0, 0, 0), "partial": (1, 0, 0, 0, 1), "crash_at_import": (1, 0, 0, 1, 2),
        "loops_for_ever": (1, 1, 1, 1, 4), "ignores_alarms": (0, 0, 0, 0, 0), "prints_10mb": (1, 1, 1, 1, 4),
        "deletes_files": (1, 1, 1, 1, 4), "hogs_memory": (0, 1, 1, 1, 3), "exits": (0, 0, 0, 0, 0),
        "corrupt": (0, 0, 0, 0, 0), "malformed": (0, 0, 0, 0, 0),
    }
    got = {s: tuple(float(row[c]) for c in ("A add", "B scale", "C mean", "D reverse", "total"))
           for s, row in marks.items()}
    assert got == {s: tuple(map(float, m)) for s, m in expected.items()}

    assert "not written yet" in feedback["stubbed"] and "Traceback" not in feedback["stubbed"]
    assert "add(1, 2) should be 3, got -1" in feedback["wrong"]
    assert "ValueError: no idea" in feedback["partial"] and "stopped after 3 s" in feedback["partial"]
    assert "No module named 'not_a_real_module_xyz'" in feedback["crash_at_import"]
    assert "NameError: name 'np' is not defined" in feedback["crash_at_import"]
    assert "cell 1: stopped after 4 s" in feedback["loops_for_ever"]
    assert "stopped after 15 s, its time limit" in feedback["ignores_alarms"]
    assert "printed 10,000,010 characters" in feedback["prints_10mb"]
    assert "ran out of memory (the limit is 1024 MB)" in feedback["hogs_memory"]
    assert "ended the grading process early (exit status 3)" in feedback["exits"]
    assert "not a readable notebook" in feedback["corrupt"] and "cells are malformed" in feedback["malformed"]
    assert "(not answered)" in feedback["stubbed"]
    deleter = feedback["deletes_files"]
    assert f"deleting {correct}" in deleter and "signalling another process" in deleter
    assert deleter.count("deleting") >= 12 and "reading" in deleter
    assert "Because." in feedback["correct"] and "Why add?" in feedback["correct"]  # written answers, for marking
    assert correct.is_file() and len(list(subs.glob("*.ipynb"))) == 13  # no submission was touched


def test_definitions_mode_runs_only_the_functions(tmp_path):
    """execute='definitions': experiments, loops and prints at the top level never run."""
    folder, subs = make_assignment(tmp_path, "definitions")
    write(subs, "student", notebook("import numpy as np\nSCALE = 2\nprint('x' * 10_000_000)",
                                    "while True:\n    pass", "raise RuntimeError('an experiment that fails')",
                                    *right(*RIGHT)))
    write(subs, "needs_a_global", notebook("import numpy as np\noffset = np.zeros(1)",
                                           "def add(a, b):\n    return a + b + offset[0]",
                                           *right("scale", "mean", "reverse")))
    assignment = grader.Assignment.load(folder)
    results = {r.student: r for r in grader.grade(assignment, subs, progress=None)}
    assert results["student"].total == 4 and not results["student"].cell_problems
    assert results["student"].printed == 0
    assert results["needs_a_global"].marks["A"] == 0
    text = grader.feedback_text(assignment, results["needs_a_global"])
    assert "name 'offset' is not defined" in text and "only your imports, functions" in text


def test_thirty_submissions_in_parallel(tmp_path):
    folder, subs = make_assignment(tmp_path, "definitions")
    for k in range(30):
        write(subs, f"student{k:02d}", notebook("import numpy as np", *right(*RIGHT)))
    out = tmp_path / "marks.csv"
    result = subprocess.run([sys.executable, "-m", "cab420utils.grading.grader", str(folder), str(subs),
                             "--out", str(out), "--jobs", str(os.cpu_count()), "--gradebook",
                             str(tmp_path / "gradebook.csv")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    marks = marks_of(out)
    assert len(marks) == 30 and all(float(row["total"]) == 4 for row in marks.values())
    assert len(list((tmp_path / "feedback").glob("*.md"))) == 30
    with open(tmp_path / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Student ID", "Tiny assignment (out of 4)"] and len(rows) == 31 and rows[1] == ["student00", "4"]


def test_jobs_and_threads_follow_the_cores_this_process_may_use(tmp_path, monkeypatch):
    """One submission per usable core by default (a container's quota, not the host's 64 cores), and the
    cores shared out as each run's thread count when fewer jobs are asked for."""
    folder, subs = make_assignment(tmp_path, "definitions")
    for k in range(3):
        write(subs, f"student{k}", notebook("import numpy as np", *right(*RIGHT)))
    assignment = grader.Assignment.load(folder)
    seen = {"workers": [], "threads": []}
    executor = concurrent.futures.ThreadPoolExecutor

    def pool(max_workers):
        seen["workers"].append(max_workers)
        return executor(max_workers=max_workers)

    def run(assignment, sub, root, private, threads):
        seen["threads"].append(threads)
        return grader.Result(sub.student, sub.path.name)

    monkeypatch.setattr(grader, "usable_cores", lambda: 4)
    monkeypatch.setattr(grader, "usable_memory", lambda: 64 * 2 ** 30)
    monkeypatch.setattr(grader.concurrent.futures, "ThreadPoolExecutor", pool)
    monkeypatch.setattr(grader, "run_submission", run)
    assert [r.student for r in grader.grade(assignment, subs, progress=None)] == ["student0", "student1", "student2"]
    grader.grade(assignment, subs, jobs=2, progress=None)
    grader.grade(assignment, subs, jobs=8, progress=None)              # no more jobs than submissions
    assert seen == {"workers": [3, 2, 3], "threads": [1, 1, 1, 2, 2, 2, 1, 1, 1]}


def test_each_run_keeps_its_share_of_threads(tmp_path, monkeypatch):
    """The grader sets TensorFlow's thread variables for each run, so profiles.setup leaves them as they are,
    even under a CPU quota it would otherwise size them to."""
    monkeypatch.setattr(profiles.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(profiles, "usable_cores", lambda: 1)
    env = grader.child_environment(tmp_path, 3)
    assert all(env[name] == "3" for name in profiles.TF_THREAD_VARIABLES)
    assert profiles.limit_cpu_threads(env) is None and all(env[name] == "3" for name in profiles.TF_THREAD_VARIABLES)


def test_default_jobs_fit_the_cores_and_the_memory():
    gib = 2 ** 30
    assert grader.default_jobs(cores=2, memory=24 * gib) == 2           # this project's CI machine: the cores
    assert grader.default_jobs(cores=8, memory=4 * gib) == 2            # docker run --cpus 8 --memory 4g
    assert grader.default_jobs(cores=8, memory=gib) == 1                # never none
    assert grader.default_jobs(cores=8, memory=None) == 8               # memory unknown (Windows): the cores


def test_console_script_and_assignment_errors(tmp_path):
    script = Path(sys.executable).with_name("cab420-grade")
    if not script.exists():
        pytest.skip("cab420-grade is not installed: run `pip install -e .`")
    result = subprocess.run([str(script), str(tmp_path), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "has no assignment.toml" in result.stderr
    folder, subs = make_assignment(tmp_path, "all")
    (folder / "test_mean.py").unlink()
    with pytest.raises(grader.AssignmentError, match="test_mean.py of exercise C are missing"):
        grader.Assignment.load(folder)


def test_submission_folders_and_ids(tmp_path):
    subs = tmp_path / "subs"
    (subs / "bob_1234").mkdir(parents=True)
    (subs / "bob_1234" / "notes.ipynb").write_text("{}")
    (subs / "bob_1234" / "tiny.ipynb").write_text("{}")
    (subs / "carol_77").mkdir()
    (subs / "dave_5").mkdir()
    (subs / "dave_5" / "a.ipynb").write_text("{}")
    (subs / "dave_5" / "b.ipynb").write_text("{}")
    (subs / "alice_9_sub.ipynb").write_text("{}")
    (subs / "readme.txt").write_text("not a notebook")
    found = {s.student: s for s in grader.find_submissions(subs, "tiny.ipynb", r"_(?P<id>\d+)")}
    assert set(found) == {"9", "1234", "77", "5"}
    assert found["1234"].path.name == "tiny.ipynb"
    assert "no notebook" in found["77"].problem and "2 notebooks" in found["5"].problem


@pytest.mark.parametrize("name", sorted(p.parent.name for p in (ROOT / "grading").glob("*/assignment.toml")))
def test_real_solutions_get_full_marks_and_student_copies_none(name, tmp_path):
    """The course's own hidden tests: the solution scores everything, the
    untouched student copy nothing, with a "not written yet" note per exercise."""
    subs = tmp_path / "submissions"
    subs.mkdir()
    notebook_name = f"{name}-exercises.ipynb"
    (subs / "solution.ipynb").write_bytes((ROOT / "solutions" / notebook_name).read_bytes())
    (subs / "student_copy.ipynb").write_bytes((ROOT / "exercises" / notebook_name).read_bytes())
    assignment = grader.Assignment.load(ROOT / "grading" / name)
    results = {r.student: r for r in grader.grade(assignment, subs, progress=None)}
    solution, copy = results["solution"], results["student_copy"]
    assert solution.total == assignment.points, grader.feedback_text(assignment, solution)
    assert copy.total == 0 and all(o.status == "not implemented" for o in copy.outcomes)
    text = grader.feedback_text(assignment, copy)
    assert text.count("not written yet") == len(assignment.exercises) and "Traceback" not in text
    assert not solution.cell_problems and not solution.blocked and not copy.blocked
    assert json.loads((ROOT / "solutions" / notebook_name).read_text())["cells"]  # the sources are untouched
