"""Exercises: one source (solutions/), generated student copies (exercises/),
instant-feedback checks that say what is wrong without a traceback, and the
fallbacks that let a student copy run to its end."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cab420utils import grading, metrics
from cab420utils.grading import checks
from cab420utils.grading.grader import Assignment
from cab420utils.grading.notebooks import (BEGIN, END, STUB_PHRASE, TAG_CHECK, TAG_SOLUTION, TAG_SOLUTION_ONLY,
                                           TAG_WRITTEN, WRITTEN_PLACEHOLDER, MarkupError, cell_source, cell_tags,
                                           compile_cell, student_notebook, stub_solution_regions)

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def load_generator():
    spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "tools" / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_exercises = load_generator()


def stub(*args, **kwargs):
    raise NotImplementedError(f"`stub` {STUB_PHRASE}: replace this line with your code.")


# --------------------------------------------------------------------------- one source, no drift
def test_committed_student_copies_match_the_generator():
    assert SOLUTIONS, "solutions/ holds no notebook"
    assert make_exercises.stale_copies() == [], "run `python tools/make_exercises.py` and commit exercises/"


def test_the_check_catches_a_hand_edited_copy(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    make_exercises.write_copies(tmp_path / "solutions", tmp_path / "exercises")
    assert make_exercises.stale_copies(tmp_path / "solutions", tmp_path / "exercises") == []
    edited = tmp_path / "exercises" / SOLUTIONS[0].name
    edited.write_text(edited.read_text().replace("YOUR CODE HERE", "your code here"))
    (tmp_path / "exercises" / "orphan.ipynb").write_text("{}")
    problems = make_exercises.stale_copies(tmp_path / "solutions", tmp_path / "exercises")
    assert any("differs" in p for p in problems) and any("orphan" in p for p in problems)


def lines_before(text, marker):
    lines = text.split("\n")
    return lines[:next(i for i, line in enumerate(lines) if marker in line)]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_student_copy_follows_the_convention(solution):
    source = nbformat.read(solution, as_version=4)
    copy = nbformat.read(ROOT / "exercises" / solution.name, as_version=4)
    assert not make_exercises.has_outputs(source), f"{solution.name} is stored with outputs"
    kept = [c for c in source.cells if TAG_SOLUTION_ONLY not in cell_tags(c)]
    assert len(copy.cells) == len(kept)
    assert sum(TAG_SOLUTION in cell_tags(c) for c in copy.cells) >= 2, "2-4 exercises per notebook"
    assert any(TAG_WRITTEN in cell_tags(c) for c in copy.cells), "at least one written answer (an experiment)"
    for original, student in zip(kept, copy.cells):
        tags = cell_tags(original)
        text = cell_source(student)
        assert BEGIN not in text and END not in text
        assert student.get("outputs", []) == []
        if TAG_SOLUTION in tags:
            assert "raise NotImplementedError(" in text and STUB_PHRASE in text and "Hint:" in text
            # the signature, docstring and hints stay
            assert lines_before(text, "YOUR CODE HERE") == lines_before(cell_source(original), BEGIN)
        elif TAG_WRITTEN in tags:
            assert text == WRITTEN_PLACEHOLDER
        else:
            assert text == cell_source(original)
    checked = [cell_source(c) for c in copy.cells if TAG_CHECK in cell_tags(c)]
    assert checked and all(s.startswith("grading.check_") and "\n" not in s for s in checked), "one-line checks"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_every_solution_has_hidden_tests_for_its_functions(solution):
    """A new notebook's exercises slot in with a solution notebook and a grading/<name>/ folder."""
    folders = [f for f in (ROOT / "grading").iterdir() if (f / "assignment.toml").is_file()]
    mine = [Assignment.load(f) for f in folders if Assignment.load(f).notebook == solution.name]
    assert len(mine) == 1, f"no (or more than one) grading/*/assignment.toml names {solution.name}"
    assignment = mine[0]
    notebook = nbformat.read(solution, as_version=4)
    solution_code = "\n".join(cell_source(c) for c in notebook.cells if TAG_SOLUTION in cell_tags(c))
    for exercise in assignment.exercises:
        assert exercise.function and f"def {exercise.function}(" in solution_code, exercise
        assert len(exercise.tests) >= 3, f"exercise {exercise.id} deserves a few hidden tests"


def test_release_holds_no_solutions_and_no_hidden_tests(tmp_path):
    files = make_exercises.make_release(tmp_path / "release")
    names = {str(p.relative_to(tmp_path / "release")) for p in files}
    assert {f"exercises/{p.name}" for p in SOLUTIONS} <= names
    assert "cab420utils/grading/checks.py" in names and "pyproject.toml" in names
    assert not any(n.startswith(("solutions/", "grading/", "tests/")) for n in names)


# --------------------------------------------------------------------------- the mark-up
def test_stubs_keep_indentation_and_the_hint():
    source = ("def f(x):\n    y = 1\n    ### BEGIN SOLUTION (hint: add them)\n    return x + y\n"
              "    ### END SOLUTION\n\ndef g():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION")
    out = stub_solution_regions(source)
    assert "return x + y" not in out and "    y = 1" in out
    assert ("    raise NotImplementedError('`f` is not written yet: replace this line with your code. "
            "Hint: add them')") in out
    assert "raise NotImplementedError('`g` is not written yet" in out
    namespace = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError) as error:
        namespace["f"](1)
    assert grading.is_not_written(error.value)


@pytest.mark.parametrize("source, tags, problem", [
    ("x = 1\n### BEGIN SOLUTION\nx = 2", ["solution"], "without an"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### END SOLUTION", ["solution"], "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", ["solution"], "inside another"),
    ("x = 1", ["solution"], "holds no"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", [], "not tagged"),
    ("x = 1", ["solutions"], "unknown tag"),
])
def test_broken_markup_is_refused(source, tags, problem):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = tags
    nb.cells = [cell]
    with pytest.raises(MarkupError, match=problem):
        student_notebook(nb)


def test_definitions_only_keeps_imports_functions_and_constants():
    source = ("import numpy as np\nfrom math import pi\nN = 3\nLABEL: str = 'x'\ndata = np.zeros(N)\n"
              "print('training...')\nclass A:\n    pass\ndef f():\n    return N\n%matplotlib inline")
    compiled = compile_cell(source, 7, definitions_only=True)
    namespace = {}
    exec(compiled.code, namespace)
    assert {"np", "pi", "N", "LABEL", "A", "f"} <= set(namespace) and "data" not in namespace
    assert compiled.skipped == 2
    assert compile_cell("%%bash\nrm -rf /", 0, definitions_only=False).code is None


# --------------------------------------------------------------------------- instant feedback
def report_lines(report):
    return {text.split(":")[0]: ok for ok, text in report.lines}


def test_a_stub_gets_a_plain_note_not_a_traceback():
    for check in (grading.check_balanced_pairs, grading.check_equal_error_rate, grading.check_triplet_loss,
                  grading.check_semi_hard_negatives, grading.check_contrastive_loss,
                  grading.check_roc_auc_from_distances, grading.check_l2_normalize, grading.check_recall_at_k,
                  grading.check_softmax_ratio_loss, grading.check_ratio_loss_gradient, grading.check_patch_pairs,
                  grading.check_spatial_contrasting_loss):
        report = check(stub)
        assert report.not_written and not report.passed
        assert "not written yet" in str(report) and "Traceback" not in str(report)


def test_pair_checks_say_what_is_wrong():
    def all_different(labels, n_pairs, rng):
        a = rng.integers(0, len(labels), n_pairs)
        b = rng.integers(0, len(labels), n_pairs)
        return a, b, (np.asarray(labels)[a] == np.asarray(labels)[b]).astype(float)

    def unseeded(labels, n_pairs, rng):
        from cab420utils import sampling

        return sampling.make_pairs(labels, n_pairs, np.random.default_rng())

    text = str(grading.check_balanced_pairs(all_different))
    assert "✗ half the pairs are same-class" in text and "(half should be)" in text
    assert "✗ a same pair never pairs an image with itself" in text
    lines = report_lines(grading.check_balanced_pairs(unseeded))
    assert lines["the same seed gives the same pairs"] is False and lines["half the pairs are same-class"] is True


def test_eer_checks_say_what_is_wrong():
    def error_at_mean_threshold(scores, same):  # a plausible mistake: one fixed threshold
        accept = np.asarray(scores) >= np.mean(scores)
        same = np.asarray(same).astype(bool)
        return float((np.mean(accept[~same]) + np.mean(~accept[same])) / 2)

    report = grading.check_equal_error_rate(error_at_mean_threshold)
    assert not report.passed and "depends only on the order of the scores: stretching" in str(report)
    assert grading.check_equal_error_rate(metrics.equal_error_rate).passed


def test_triplet_loss_checks_say_what_is_wrong():
    from keras import ops

    def no_epsilon(a, p, n, margin=0.2):
        d = lambda x, y: ops.sqrt(ops.sum(ops.square(x - y), axis=-1))  # noqa: E731
        return ops.mean(ops.maximum(d(a, p) - d(a, n) + margin, 0.0))

    def squared(a, p, n, margin=0.2):
        d = lambda x, y: ops.sum(ops.square(x - y), axis=-1)  # noqa: E731
        return ops.mean(ops.maximum(d(a, p) - d(a, n) + margin, 0.0))

    def with_numpy(a, p, n, margin=0.2):
        d = lambda x, y: np.linalg.norm(np.asarray(x) - np.asarray(y), axis=-1)  # noqa: E731
        return np.mean(np.maximum(d(a, p) - d(a, n) + margin, 0.0))

    lines = report_lines(grading.check_triplet_loss(no_epsilon))
    assert lines["a finite gradient when anchor and positive coincide"] is False
    assert lines["a hand-worked batch of two triplets"] is True
    assert "not squared: d(a, p) = 2" in str(grading.check_triplet_loss(squared))
    text = str(grading.check_triplet_loss(with_numpy))
    assert "✗ runs inside a Keras model" in text and "use keras.ops" in text
    assert not grading.check_triplet_loss(with_numpy).not_written  # TensorFlow's own NotImplementedError is no stub


def test_semi_hard_checks_say_what_is_wrong():
    def hardest(distances, labels):  # batch-hard negatives instead of semi-hard ones
        labels = np.asarray(labels)
        same = labels[:, None] == labels[None]
        a, p = np.nonzero(same & ~np.eye(len(labels), dtype=bool))
        return a, p, np.argmin(np.where(~same[a], np.asarray(distances)[a], np.inf), axis=1)

    text = str(grading.check_semi_hard_negatives(hardest))
    assert "✗ each negative is the closest one further than the positive" in text
    assert "not further than the positive" in text
    assert "✓ negatives come from other classes" in text


def test_checks_of_notebooks_02_to_06_pass_the_course_versions_and_catch_a_plausible_mistake():
    from keras import ops

    from cab420utils import contrasting, losses, models

    def contrastive(same, a, b, margin=1.0):
        return losses.contrastive_loss(same, losses.euclidean_distance(a, b), margin)

    def contrastive_no_epsilon(same, a, b, margin=1.0):
        d = ops.sqrt(ops.sum(ops.square(a - b), axis=-1))
        same = ops.cast(ops.reshape(same, (-1,)), "float32")
        return ops.mean(same * ops.square(d) + (1 - same) * ops.square(ops.maximum(margin - d, 0.0)))

    def auc_ties_lost(distances, same):  # strict wins only: a tie counts 0, not half
        d, same = np.asarray(distances), np.asarray(same).astype(bool)
        return float(np.mean(d[same][:, None] < d[~same][None, :]))

    def recall_with_self(e, labels, k):  # forgets to leave the query out
        d = metrics.squared_distances(e, e)
        return float(np.mean((np.asarray(labels)[np.argsort(d, axis=1)[:, :k]] == np.asarray(labels)[:, None]).any(1)))

    def naive_ratio(d_pos, d_neg):
        p = ops.exp(d_pos) / (ops.exp(d_pos) + ops.exp(d_neg))
        return ops.mean(ops.square(p))

    def rows_only(first, second):  # not symmetrised
        return ops.mean(-ops.diagonal(ops.log_softmax(-contrasting.cross_distances(first, second), axis=1)))

    def ratio_gradient(z, form="mse"):
        s = 0.5 * (1 + np.tanh(0.5 * np.asarray(z, float)))
        return s if form == "log" else 2 * s ** 2 * (1 - s)

    def same_corner(images, p, rng):
        first = contrasting.sample_patch_pairs(images, p, rng, flip=False).first
        return first, first.copy()

    assert grading.check_contrastive_loss(contrastive).passed
    assert "✗ a finite gradient when the two embeddings" in str(grading.check_contrastive_loss(contrastive_no_epsilon))
    assert grading.check_roc_auc_from_distances(lambda d, s: metrics.roc_auc(-np.asarray(d), s)).passed
    assert "✗ a tie between a same and a different pair counts half" in str(
        grading.check_roc_auc_from_distances(auc_ties_lost))
    assert grading.check_l2_normalize(lambda x: models.L2Normalize()(x)).passed
    assert "✗ a zero vector stays zero" in str(grading.check_l2_normalize(lambda x: x / ops.norm(x, axis=-1,
                                                                                               keepdims=True)))
    assert grading.check_recall_at_k(lambda e, y, k: metrics.identification_report(e, y, ks=(1, k))[
        "P@1" if k == 1 else f"Recall@{k}"]).passed
    assert "✗ leave-one-out" in str(grading.check_recall_at_k(recall_with_self))
    assert grading.check_softmax_ratio_loss(losses.softmax_ratio_loss).passed
    assert "✗ finite and right for distances in the hundreds" in str(grading.check_softmax_ratio_loss(naive_ratio))
    assert grading.check_ratio_loss_gradient(ratio_gradient).passed
    assert "✗ MSE form" in str(grading.check_ratio_loss_gradient(lambda z, form="mse": ratio_gradient(z, "log")))
    assert grading.check_patch_pairs(lambda x, p, rng: (lambda pp: (pp.first, pp.second))(
        contrasting.sample_patch_pairs(x, p, rng, flip=False))).passed
    assert "✗ the two patches of an image are placed independently" in str(grading.check_patch_pairs(same_corner))
    assert grading.check_spatial_contrasting_loss(contrasting.spatial_contrasting_loss).passed
    assert "✗ symmetric" in str(grading.check_spatial_contrasting_loss(rows_only))


def test_fallback_uses_the_reference_only_for_a_stub(capsys):
    sampler = grading.with_fallback(stub, metrics.equal_error_rate, "1.2")
    assert sampler([0.9, 0.1], [1, 0]) == 0.0 and sampler([0.9, 0.1], [1, 0]) == 0.0
    assert capsys.readouterr().out.count("is not written yet, so this uses the course's") == 1

    def broken(*args):
        raise NotImplementedError("unsupported dtype")  # raised by the student's own code: counts as not written
    assert grading.with_fallback(broken, metrics.equal_error_rate, "1.2")([0.9, 0.1], [1, 0]) == 0.0

    def wrong(*args):
        raise ValueError("a real bug")
    with pytest.raises(ValueError):
        grading.with_fallback(wrong, metrics.equal_error_rate, "1.2")([0.9, 0.1], [1, 0])


def test_assert_checks_passed_names_the_failing_exercise(monkeypatch):
    monkeypatch.setattr(checks, "_LATEST", {})
    with pytest.raises(AssertionError, match="no check"):
        grading.assert_checks_passed()
    grading.check_equal_error_rate(metrics.equal_error_rate)
    grading.assert_checks_passed()
    grading.check_balanced_pairs(stub)
    with pytest.raises(AssertionError, match="Exercise 1.1"):
        grading.assert_checks_passed()


def test_generator_runs_as_a_script(tmp_path):
    import subprocess

    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
