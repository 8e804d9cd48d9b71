"""How an exercise notebook is marked up, and how its student copy is made.

The complete notebook in ``solutions/`` is the only source.  Four cell tags
(Jupyter: *View > Cell toolbar > Tags*; JupyterLab: the property inspector)
say what becomes of each cell in the student copy in ``exercises/``:

``solution``
    A code cell holding one or more regions between ``### BEGIN SOLUTION`` and
    ``### END SOLUTION``.  Each region becomes a stub that raises
    ``NotImplementedError``; the rest of the cell (signature, docstring, hints
    in comments) is kept.  A hint for the stub's message may follow the marker:
    ``### BEGIN SOLUTION (hint: draw the class first)``.
``check``
    An instant-feedback cell, one line calling :mod:`cab420utils.grading`;
    kept as it is.
``written``
    A markdown cell whose whole text is the model answer to a written question
    (the question sits in the cell above); the student copy gets a placeholder.
``solution-only``
    A cell dropped from the student copy (e.g. one asserting that every check
    passes, which only the complete version can).

Every other cell is copied unchanged.  Outputs are never kept.  The grader
reads the same tags: it collects ``written`` cells for marking by hand.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

TAG_SOLUTION = "solution"
TAG_CHECK = "check"
TAG_WRITTEN = "written"
TAG_SOLUTION_ONLY = "solution-only"
TAGS = (TAG_SOLUTION, TAG_CHECK, TAG_WRITTEN, TAG_SOLUTION_ONLY)

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_BEGIN_LINE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:\s*\(hint:\s*(?P<hint>.*)\))?\s*$")
_END_LINE = re.compile(r"^[ \t]*### END SOLUTION\s*$")
_DEF_LINE = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")

#: What a ``written`` cell says in the student copy.
WRITTEN_PLACEHOLDER = "**Your answer:** *replace this text with two to four sentences.*"
#: The phrase every stub's message contains; checks and fallbacks recognise a stub by it.
STUB_PHRASE = "is not written yet"


class MarkupError(ValueError):
    """A solution notebook breaks the convention (unbalanced markers, a marker outside a ``solution`` cell...)."""


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def stub_lines(indent: str, function: str | None, hint: str | None) -> list[str]:
    """The lines that replace one solution region."""
    what = f"`{function}`" if function else "This exercise"
    message = f"{what} {STUB_PHRASE}: replace this line with your code."
    if hint:
        message += f" Hint: {hint}"
    return [f"{indent}# YOUR CODE HERE: replace the line below.",
            f"{indent}raise NotImplementedError({message!r})"]


def stub_solution_regions(source: str, where: str = "cell") -> str:
    """``source`` with every BEGIN/END SOLUTION region replaced by a stub."""
    lines = source.split("\n")
    out: list[str] = []
    function = None
    region = None  # (indent, hint) while inside a region
    for number, line in enumerate(lines, 1):
        begin, end = _BEGIN_LINE.match(line), _END_LINE.match(line)
        if region is None:
            if end:
                raise MarkupError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            if begin:
                region = (begin["indent"], (begin["hint"] or "").strip() or None)
                continue
            if BEGIN in line:
                raise MarkupError(f"{where}, line {number}: write the marker on a line of its own: {line.strip()!r}")
            definition = _DEF_LINE.match(line)
            if definition:
                function = definition["name"]
            out.append(line)
        else:
            if begin:
                raise MarkupError(f"{where}, line {number}: {BEGIN} inside another solution region")
            if end:
                out.extend(stub_lines(region[0], function, region[1]))
                region = None
    if region is not None:
        raise MarkupError(f"{where}: {BEGIN} without an {END}")
    return "\n".join(out)


def student_cell(cell, where: str):
    """The student copy of one solution cell, or None to drop it."""
    tags = set(cell_tags(cell))
    unknown = {t for t in tags if t not in TAGS and t.startswith("solution")}
    if unknown:
        raise MarkupError(f"{where}: unknown tag(s) {sorted(unknown)}; the convention's tags are {', '.join(TAGS)}")
    source = cell_source(cell)
    if TAG_SOLUTION_ONLY in tags:
        return None
    copy = {key: value for key, value in cell.items() if key not in ("outputs", "execution_count", "source")}
    copy["metadata"] = dict(cell.get("metadata", {}))
    if cell.get("cell_type") == "code":
        copy["outputs"], copy["execution_count"] = [], None
    if TAG_SOLUTION in tags:
        if cell.get("cell_type") != "code":
            raise MarkupError(f"{where}: only code cells can be tagged {TAG_SOLUTION!r}")
        if BEGIN not in source:
            raise MarkupError(f"{where}: tagged {TAG_SOLUTION!r} but holds no {BEGIN} region")
        copy["source"] = stub_solution_regions(source, where)
    elif TAG_WRITTEN in tags:
        if cell.get("cell_type") != "markdown":
            raise MarkupError(f"{where}: only markdown cells can be tagged {TAG_WRITTEN!r}")
        copy["source"] = WRITTEN_PLACEHOLDER
    else:
        if BEGIN in source or END in source:
            raise MarkupError(f"{where}: holds a solution marker but is not tagged {TAG_SOLUTION!r}")
        copy["source"] = source
    return copy


def student_notebook(solution: dict, name: str = "notebook") -> dict:
    """The student copy of a solution notebook (a dict in nbformat 4's layout)."""
    cells = []
    for i, cell in enumerate(solution.get("cells", [])):
        copy = student_cell(cell, f"{name}, cell {i}")
        if copy is not None:
            cells.append(copy)
    if not any(TAG_SOLUTION in cell_tags(c) for c in solution.get("cells", [])):
        raise MarkupError(f"{name}: no cell is tagged {TAG_SOLUTION!r}, so the student copy would hold no exercise")
    return {**solution, "cells": cells}


def written_answers(notebook: dict) -> list[tuple[str, str]]:
    """``(question, answer)`` for every ``written`` cell: the question is the
    markdown cell just above it."""
    answers = []
    cells = [c for c in notebook.get("cells", []) if isinstance(c, dict)]
    for i, cell in enumerate(cells):
        if TAG_WRITTEN in cell_tags(cell):
            question = next((cell_source(c).strip() for c in reversed(cells[:i]) if c.get("cell_type") == "markdown"
                             and TAG_WRITTEN not in cell_tags(c)), "") or f"(the question above cell {i})"
            answers.append((question, cell_source(cell).strip()))
    return answers


def read_notebook(path: str | Path) -> dict:
    """A notebook as a plain dict; a clear ValueError for a file that is not one."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{Path(path).name} is not a readable notebook (not valid JSON: {error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{Path(path).name} is not a Jupyter notebook (no list of cells)")
    return notebook


# --------------------------------------------------------------------------- what the grader runs
def without_magics(source: str) -> str | None:
    """IPython-only lines (``%magic``, ``!shell``) commented out; None for a
    cell magic (``%%...``), whose cell is not Python."""
    if source.lstrip().startswith("%%"):
        return None
    return "\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def _is_constant(node) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_definition(node) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _is_constant(node.value)
    return False


@dataclass
class CellCode:
    """One cell, compiled for the grader: ``code`` is None when nothing in it runs."""

    index: int
    code: object
    skipped: int  # top-level statements left out (definitions mode)


def compile_cell(source: str, index: int, definitions_only: bool) -> CellCode:
    """Compile a code cell as the grader runs it.  With ``definitions_only``,
    keep only imports, ``def``/``class`` and assignments of literal constants:
    the student's functions, without the experiments that use them."""
    filename = f"<cell {index}>"
    source = without_magics(source)
    if source is None:
        return CellCode(index, None, 0)
    tree = ast.parse(source, filename)  # SyntaxError reaches the caller, who reports it
    skipped = 0
    if definitions_only:
        kept = [node for node in tree.body if _is_definition(node)]
        skipped = len(tree.body) - len(kept)
        tree.body = kept
    return CellCode(index, compile(tree, filename, "exec") if tree.body else None, skipped)
