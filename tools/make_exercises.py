#!/usr/bin/env python3
"""Write the student copies in exercises/ from the complete notebooks in solutions/.

    python tools/make_exercises.py                  # (re)write every exercises/<name>.ipynb
    python tools/make_exercises.py --check          # exit 1 if exercises/ differs from what it would write
    python tools/make_exercises.py --release DIR    # a student release in DIR: no solutions, no hidden tests

Run it with the course's environment (``.venv/bin/python``).  The mark-up
convention (cell tags ``solution``, ``check``, ``written``, ``solution-only``;
``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers) is described in
``cab420utils/grading/notebooks.py`` and ``docs/instructors.md``.  Never edit
exercises/ by hand: ``tests/test_exercises.py`` fails when it differs from
what this script makes.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cab420utils.grading.notebooks import BEGIN, MarkupError, student_notebook  # noqa: E402

SOLUTIONS, EXERCISES = ROOT / "solutions", ROOT / "exercises"
#: What a student release holds (paths relative to the repository root).
RELEASE = ("README.md", "LICENSE", "Makefile", "pyproject.toml", "environment.yml", "tools/course.py",
           "cab420utils", "notebooks", "exercises")


def solution_notebooks(folder: Path = SOLUTIONS) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def has_outputs(notebook: dict) -> bool:
    return any(cell.get("outputs") or cell.get("execution_count") for cell in notebook["cells"])


def student_copy_text(solution_path: Path) -> str:
    """The exact text of the student copy of one solution notebook."""
    solution = nbformat.read(solution_path, as_version=4)
    if has_outputs(solution):
        raise MarkupError(f"{solution_path.name} holds outputs: clear them before committing "
                          f"(Jupyter: Edit > Clear outputs of all cells)")
    copy = student_notebook(solution, solution_path.name)
    copy["metadata"] = {**copy.get("metadata", {}),
                        "cab420": {"generated_from": f"solutions/{solution_path.name}",
                                   "generated_by": "tools/make_exercises.py (do not edit by hand)"}}
    copy = nbformat.from_dict(copy)
    nbformat.validate(copy)
    return nbformat.writes(copy)


def expected_copies(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> dict[Path, str]:
    return {exercises / path.name: student_copy_text(path) for path in solution_notebooks(solutions)}


def stale_copies(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[str]:
    """What differs between exercises/ and what the generator makes: stale, missing or orphaned copies."""
    expected = expected_copies(solutions, exercises)
    problems = [f"{p.relative_to(p.parents[1])} is missing" if not p.exists() else
                f"{p.relative_to(p.parents[1])} differs from its solution's student copy"
                for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    problems += [f"{p.relative_to(p.parents[1])} has no solution in solutions/"
                 for p in sorted(exercises.glob("*.ipynb")) if p not in expected]
    return problems


def write_copies(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[Path]:
    expected = expected_copies(solutions, exercises)
    exercises.mkdir(exist_ok=True)
    for path, text in expected.items():
        path.write_text(text, encoding="utf-8")
    for orphan in sorted(set(exercises.glob("*.ipynb")) - set(expected)):
        orphan.unlink()
    return sorted(expected)


def make_release(destination: Path, root: Path = ROOT) -> list[Path]:
    """Copy what students receive into ``destination`` (which must not exist):
    the lectures, the student copies and the package — never solutions/ or grading/."""
    if destination.exists():
        raise SystemExit(f"{destination} already exists: choose a new folder for the release")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
    for name in RELEASE:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    leaks = [p for p in destination.rglob("*.ipynb") if BEGIN in p.read_text(encoding="utf-8")]
    leaks += [destination / name for name in ("solutions", "grading") if (destination / name).exists()]
    if leaks:
        shutil.rmtree(destination)
        raise SystemExit(f"the release would hold solutions or hidden tests: {leaks}")
    return sorted(p for p in destination.rglob("*") if p.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if exercises/ is stale")
    parser.add_argument("--release", type=Path, metavar="DIR", help="also write a student release into DIR")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale_copies()
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print("Run `python tools/make_exercises.py` to regenerate exercises/.", file=sys.stderr)
            return 1 if problems else 0
        for path in write_copies():
            print(f"wrote {path.relative_to(ROOT)}")
    except MarkupError as error:
        print(f"make_exercises: {error}", file=sys.stderr)
        return 1
    if args.release:
        files = make_release(args.release)
        print(f"student release: {len(files)} files in {args.release} (no solutions/, no grading/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
