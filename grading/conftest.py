"""``pytest grading/<name>`` runs that assignment's hidden tests against its
solution notebook, in this process: a quick way to try a new test while
writing it.  ``cab420-grade`` (sandboxed, with limits) is what marks students."""
from __future__ import annotations

import functools
import types
from pathlib import Path

import pytest

from cab420utils.grading.grader import Assignment
from cab420utils.grading.notebooks import cell_source, compile_cell, read_notebook

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def solution_namespace(folder: Path) -> types.SimpleNamespace:
    assignment = Assignment.load(folder)
    notebook = read_notebook(ROOT / "solutions" / assignment.notebook)
    namespace = {"__name__": "__main__"}
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") == "code":
            compiled = compile_cell(cell_source(cell), index, definitions_only=True)
            if compiled.code is not None:
                exec(compiled.code, namespace)
    return types.SimpleNamespace(**namespace)


@pytest.fixture
def student(request):
    return solution_namespace(Path(request.fspath).parent)
