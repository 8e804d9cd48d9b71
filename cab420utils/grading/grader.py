"""``cab420-grade``: mark a folder of submitted notebooks against hidden tests.

    cab420-grade grading/01-siamese-bce submissions/ --out marks.csv

``grading/01-siamese-bce`` is an *assignment folder*: ``assignment.toml``
(title, limits, exercises and their points) and one file of hidden tests per
exercise.  ``submissions/`` holds one notebook per student — ``<student>.ipynb``,
or a folder ``<student>/`` with the notebook inside (as a learning-management
system exports them).

Each submission is copied into a private folder and run in its own process
(:mod:`cab420utils.grading.sandbox`) with a time limit, a memory cap and an
audit hook; several run in parallel, one per core.  Out come ``marks.csv``
(one row a student, a column an exercise, a total), ``feedback/<student>.md``
(what passed, what failed and why, and the written answers for marking by
hand) and, with ``--gradebook``, a CSV to upload to a gradebook.

A hidden test is a function ``test_*(student)`` in the exercise's file: it
gets the notebook's names as attributes of ``student`` and asserts, with a
message saying in plain words what is wrong.  An exercise's mark is its points
times the fraction of its tests that pass.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..limits import usable_cores, usable_memory
from ..profiles import TF_THREAD_VARIABLES
from .notebooks import WRITTEN_PLACEHOLDER, read_notebook, written_answers

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None

EXECUTE_MODES = ("definitions", "all")
DEFAULTS = {"execute": "definitions", "time_limit": 120, "cell_time_limit": 60, "test_time_limit": 20,
            "memory_limit_mb": 4096, "file_limit_mb": 64, "output_limit_chars": 20_000}
STATUS_WORDS = {"passed": "✓", "failed": "✗", "error": "✗", "timeout": "✗", "not implemented": "·",
                "not run": "✗", "grader error": "!"}


class AssignmentError(ValueError):
    """The assignment folder itself is wrong (an instructor's problem, not a student's)."""


@dataclass
class Test:
    name: str
    description: str


@dataclass
class Exercise:
    id: str
    name: str
    points: float
    file: str
    source: str
    tests: list[Test]
    function: str = ""  # the function the exercise asks for (documentation, and checked by the course's tests)

    @property
    def column(self) -> str:
        return f"{self.id} {self.name}"


@dataclass
class Assignment:
    folder: Path
    title: str
    notebook: str
    exercises: list[Exercise]
    execute: str = DEFAULTS["execute"]
    time_limit: float = DEFAULTS["time_limit"]
    cell_time_limit: float = DEFAULTS["cell_time_limit"]
    test_time_limit: float = DEFAULTS["test_time_limit"]
    memory_limit_mb: int = DEFAULTS["memory_limit_mb"]
    file_limit_mb: int = DEFAULTS["file_limit_mb"]
    output_limit_chars: int = DEFAULTS["output_limit_chars"]

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @classmethod
    def load(cls, folder) -> "Assignment":
        folder = Path(folder)
        config_path = folder / "assignment.toml"
        if not config_path.is_file():
            raise AssignmentError(f"{folder} is not an assignment folder: it has no assignment.toml")
        if tomllib is None:
            raise AssignmentError("reading assignment.toml needs Python 3.11 or newer (or `pip install tomli`)")
        try:
            config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise AssignmentError(f"{config_path}: {error}") from None
        unknown = set(config) - set(DEFAULTS) - {"title", "notebook", "exercise"}
        if unknown:
            raise AssignmentError(f"{config_path}: unknown setting(s) {sorted(unknown)}")
        exercises = [cls._exercise(folder, entry) for entry in config.get("exercise", [])]
        if not exercises:
            raise AssignmentError(f"{config_path}: no [[exercise]] tables")
        ids = [e.id for e in exercises]
        if len(set(ids)) != len(ids):
            raise AssignmentError(f"{config_path}: exercise ids repeat: {ids}")
        settings = {k: config.get(k, v) for k, v in DEFAULTS.items()}
        if settings["execute"] not in EXECUTE_MODES:
            raise AssignmentError(f"{config_path}: execute must be one of {EXECUTE_MODES}")
        return cls(folder=folder, title=config.get("title", folder.name), notebook=config.get("notebook", ""),
                   exercises=exercises, **settings)

    @staticmethod
    def _exercise(folder: Path, entry: dict) -> Exercise:
        missing = {"id", "name", "points", "tests"} - set(entry)
        if missing:
            raise AssignmentError(f"{folder}/assignment.toml: an [[exercise]] lacks {sorted(missing)}")
        unknown = set(entry) - {"id", "name", "points", "tests", "function"}
        if unknown:
            raise AssignmentError(f"{folder}/assignment.toml: exercise {entry['id']} has unknown key(s) "
                                  f"{sorted(unknown)}")
        path = folder / entry["tests"]
        if not path.is_file():
            raise AssignmentError(f"{folder}: the hidden tests {entry['tests']} of exercise {entry['id']} are missing")
        source = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(source, str(path))
        except SyntaxError as error:
            raise AssignmentError(f"{path}, line {error.lineno}: {error.msg}") from None
        tests = [Test(node.name, (ast.get_docstring(node) or node.name).strip().splitlines()[0])
                 for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]
        if not tests:
            raise AssignmentError(f"{path} holds no test_* functions")
        return Exercise(str(entry["id"]), str(entry["name"]), float(entry["points"]), entry["tests"], source, tests,
                        str(entry.get("function", "")))


# --------------------------------------------------------------------------- submissions
@dataclass
class Submission:
    student: str
    path: Path | None
    problem: str = ""


def _safe_id(text: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", text).strip("._") or "student"


def find_submissions(folder, notebook_name: str = "", id_pattern: str | None = None) -> list[Submission]:
    """One entry per student: ``<student>.ipynb`` files and ``<student>/`` folders
    (holding one notebook, or several of which one is named ``notebook_name``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AssignmentError(f"{folder} is not a folder of submissions")
    pattern = re.compile(id_pattern) if id_pattern else None
    found: list[Submission] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append(Submission(entry.stem, entry))
        elif entry.is_dir():
            notebooks = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            named = [p for p in notebooks if p.name == notebook_name]
            if len(notebooks) == 1 or len(named) == 1:
                found.append(Submission(entry.name, (named or notebooks)[0]))
            elif not notebooks:
                found.append(Submission(entry.name, None, "no notebook (.ipynb) was found in the submission"))
            else:
                found.append(Submission(entry.name, None, f"{len(notebooks)} notebooks were submitted and none is "
                                        f"named {notebook_name or 'as the assignment'}: submit one"))
    seen: dict[str, int] = {}
    for sub in found:
        if pattern:
            match = pattern.search(sub.student)
            if match:
                sub.student = match.groupdict().get("id") or match.group(0)
        sub.student = _safe_id(sub.student)
        if sub.student in seen:
            seen[sub.student] += 1
            sub.student = f"{sub.student}-{seen[sub.student]}"
        else:
            seen[sub.student] = 1
    return found


# --------------------------------------------------------------------------- results
@dataclass
class Outcome:
    exercise: str
    test: Test
    status: str
    message: str = ""


@dataclass
class Result:
    student: str
    submitted: str
    outcomes: list[Outcome] = field(default_factory=list)
    cell_problems: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    printed: int = 0
    printed_head: str = ""
    written: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(self.marks.values()), 2)


def score(assignment: Assignment, result: Result) -> None:
    for exercise in assignment.exercises:
        mine = [o for o in result.outcomes if o.exercise == exercise.id]
        passed = sum(o.status == "passed" for o in mine)
        result.marks[exercise.id] = round(exercise.points * passed / len(exercise.tests), 2)


# --------------------------------------------------------------------------- one sandboxed run
def _matplotlib_cache() -> Path:
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "matplotlib"


def child_environment(root: Path, threads: int) -> dict:
    """The sandbox's environment: its own home, temp and caches, offline, no GPU
    contention between parallel runs, a fixed number of threads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    if not env.get("CAB420_DATA"):
        for folder in (Path(env.get("CAB420_CACHE", Path.home() / ".cache" / "cab420")) / "datasets",
                       Path(__file__).resolve().parents[2].parent / "shared" / "datasets"):
            if folder.is_dir():
                env["CAB420_DATA"] = str(folder)
                break
    for name in ("home", "tmp", "mpl", "build", "cache"):
        (root / name).mkdir(exist_ok=True)
    env.update({
        "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "MPLCONFIGDIR": str(root / "mpl"),
        "CAB420_BUILD": str(root / "build"), "CAB420_CACHE": str(root / "cache"), "CAB420_OFFLINE": "1",
        "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1",
        "KERAS_BACKEND": env.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": env.get("CAB420_GRADE_GPUS", "-1"), "CAB420_PROFILE": "fast",
        # TensorFlow's names are the ones profiles.setup leaves alone when set, so each run keeps its share
        **{k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     *TF_THREAD_VARIABLES)},
    })
    for font_list in _matplotlib_cache().glob("fontlist-*.json"):  # spare each run rebuilding the font cache
        shutil.copy2(font_list, root / "mpl" / font_list.name)
    return env


def _read_events(stdout: bytes) -> list[dict]:
    events = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _log_tail(path: Path, n: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def run_submission(assignment: Assignment, submission: Submission, root: Path, private: list[Path],
                   threads: int = 1) -> Result:
    """Grade one staged submission in its own process; never raises for the student's sake."""
    result = Result(submission.student, submission.path.name if submission.path else "")
    all_tests = [(e.id, t) for e in assignment.exercises for t in e.tests]
    if submission.problem:
        result.notes.append(submission.problem)
        result.outcomes = [Outcome(e, t, "not run", submission.problem) for e, t in all_tests]
        return result
    try:
        result.written = written_answers(read_notebook(root / "work" / "submission.ipynb"))
    except ValueError:
        pass  # the sandbox says why
    job = {
        "notebook": str(root / "work" / "submission.ipynb"), "root": str(root), "log": str(root / "output.log"),
        "private": [str(p) for p in private], "execute": assignment.execute,
        "cell_time_limit": assignment.cell_time_limit, "test_time_limit": assignment.test_time_limit,
        "memory_mb": assignment.memory_limit_mb, "file_mb": assignment.file_limit_mb,
        "output_limit": assignment.output_limit_chars,
        "exercises": [{"id": e.id, "file": e.file, "source": e.source, "tests": [t.name for t in e.tests]}
                      for e in assignment.exercises],
    }
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cab420utils.grading.sandbox"], cwd=root / "work",
                               env=child_environment(root, threads), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    killed = False
    try:
        stdout, stderr = process.communicate(json.dumps(job).encode(), timeout=assignment.time_limit)
    except subprocess.TimeoutExpired:
        killed = True
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the whole group: whatever it started goes too
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
    result.seconds = time.perf_counter() - started
    events = _read_events(stdout)
    got = {}
    for event in events:
        kind = event.get("event")
        if kind == "cell":
            result.cell_problems.append(f"cell {event['cell']}: {event['message']}")
        elif kind == "test":
            got[(event["exercise"], event["test"])] = (event["status"], event.get("message", ""))
        elif kind == "exercise":
            for e, t in all_tests:
                if e == event["exercise"]:
                    got[(e, t.name)] = (event["status"], event["message"])
        elif kind == "blocked":
            result.blocked.append(event["what"])
        elif kind == "unreadable":
            message = event["message"].replace("submission.ipynb", result.submitted)
            result.notes.append(f"the notebook could not be read: {message}")
        elif kind == "done":
            result.printed, result.printed_head = int(event.get("printed", 0)), event.get("head", "")
    finished = any(e.get("event") in ("done", "unreadable") for e in events)
    unreadable = [e for e in events if e.get("event") == "unreadable"]
    if killed:
        why = f"grading stopped at the time limit of {assignment.time_limit:g} s (the notebook or a test kept running)"
        result.notes.append(f"the grading process was stopped after {assignment.time_limit:g} s, its time limit")
    elif unreadable:
        why = "the notebook could not be read"
    elif not finished:
        if process.returncode < 0:
            why = f"the grading process died ({signal.Signals(-process.returncode).name})"
            if -process.returncode in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT):
                why += f"; out of memory? the limit is {assignment.memory_limit_mb} MB"
        else:
            why = f"the notebook ended the grading process early (exit status {process.returncode})"
        tail = _log_tail(root / "output.log") or stderr.decode("utf-8", "replace").strip()[-600:]
        result.notes.append(why + (f". Last output: {tail}" if tail else ""))
    else:
        why = "no result came back for this test"
    for exercise_id, test in all_tests:
        status, message = got.get((exercise_id, test.name), ("not run", why))
        result.outcomes.append(Outcome(exercise_id, test, status, message))
    if result.printed > assignment.output_limit_chars:
        result.notes.append(f"the notebook printed {result.printed:,} characters; only the first "
                            f"{assignment.output_limit_chars:,} were kept (printing that much slows everything down)")
    return result


# --------------------------------------------------------------------------- the class
def stage(submissions: list[Submission], workdir: Path) -> list[Path]:
    """Copy every submission into its own folder before any runs, so no run can
    reach another's file.  Folder names are numbers, not student names."""
    roots = []
    for k, sub in enumerate(submissions):
        root = workdir / f"{k:04d}"
        (root / "work").mkdir(parents=True)
        if sub.path is not None:
            try:
                shutil.copyfile(sub.path, root / "work" / "submission.ipynb")
            except OSError as error:
                sub.problem = f"the submitted file could not be copied: {error}"
        roots.append(root)
    return roots


# A submission's peak memory as the grader runs it: 0.8-1.0 GB measured (TensorFlow imported, the functions
# defined, the hidden tests run; notebook 06's exercises the largest), with room to spare.
JOB_MEMORY_GB = 1.5


def default_jobs(cores: int | None = None, memory: int | None = None) -> int:
    """Submissions to grade at once: one per core this process may use, as many as its memory holds at
    :data:`JOB_MEMORY_GB` each (a container's CPU quota and memory limit count, :mod:`cab420utils.limits`), at
    least one.  ``cores`` and ``memory`` (bytes) default to what this process may use."""
    cores = usable_cores() if cores is None else cores
    memory = usable_memory() if memory is None else memory
    fit = cores if memory is None else int(memory // (JOB_MEMORY_GB * 2 ** 30))
    return max(1, min(cores, fit))


def grade(assignment: Assignment, submissions_folder, jobs: int | None = None, id_pattern: str | None = None,
          keep: Path | None = None, progress=print) -> list[Result]:
    """Grade every submission in ``submissions_folder``, ``jobs`` at a time
    (default: :func:`default_jobs`, one per core this process may use while its memory lasts).  Results come
    back sorted by student."""
    submissions = find_submissions(submissions_folder, assignment.notebook, id_pattern)
    cores = usable_cores()
    jobs = max(1, min(jobs or default_jobs(cores), len(submissions)))   # never more than there is to grade
    threads = max(1, cores // jobs)
    if progress:
        progress(f"Grading {len(submissions)} submission(s), {jobs} at a time, {threads} thread(s) each "
                 f"({cores} usable core(s); --jobs to change)")
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cab420-grade-", dir=keep))
    # Folders a run may not read; never one holding the course's package or Python itself.
    needed = [Path(__file__).resolve().parents[1], Path(sys.prefix).resolve()]
    private = [p for p in (workdir, Path(submissions_folder).resolve(), assignment.folder.resolve())
               if not any(n == p or p in n.parents for n in needed)]
    results = []
    try:
        roots = stage(submissions, workdir)
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(run_submission, assignment, sub, root, private, threads): sub
                       for sub, root in zip(submissions, roots)}
            for n, future in enumerate(concurrent.futures.as_completed(futures), 1):
                sub = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - one student's trouble never stops the class
                    result = Result(sub.student, sub.path.name if sub.path else "",
                                    notes=[f"the grader failed on this submission: {error!r}"])
                    result.outcomes = [Outcome(e.id, t, "not run", "grader failure")
                                       for e in assignment.exercises for t in e.tests]
                score(assignment, result)
                results.append(result)
                if progress:
                    progress(f"[{n}/{len(submissions)}] {result.student}: {result.total:g} / "
                             f"{assignment.points:g} ({result.seconds:.0f} s)")
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return sorted(results, key=lambda r: r.student)


# --------------------------------------------------------------------------- what comes out
def write_marks(assignment: Assignment, results: list[Result], path) -> None:
    """``student``, one column per exercise, ``total`` and ``notes``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student"] + [e.column for e in assignment.exercises] + ["total", "notes"])
        for r in results:
            writer.writerow([r.student] + [f"{r.marks.get(e.id, 0):g}" for e in assignment.exercises]
                            + [f"{r.total:g}", "; ".join(n.split(". Last output")[0] for n in r.notes)])


def write_gradebook(assignment: Assignment, results: list[Result], path, id_column: str = "Student ID",
                    grade_column: str | None = None) -> None:
    """Two columns a gradebook import can match: the student's identifier and the total."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([id_column, grade_column or f"{assignment.title} (out of {assignment.points:g})"])
        for r in results:
            writer.writerow([r.student, f"{r.total:g}"])


def feedback_text(assignment: Assignment, result: Result) -> str:
    lines = [f"# {assignment.title}: feedback for {result.student}", "",
             f"Submitted file: {result.submitted or '(none)'}  ",
             f"Total: **{result.total:g} / {assignment.points:g}**", ""]
    if result.notes:
        lines += ["## Problems with the submission", ""] + [f"- {n}" for n in result.notes] + [""]
    for exercise in assignment.exercises:
        lines += [f"## Exercise {exercise.id}: {exercise.name} — {result.marks.get(exercise.id, 0):g} / "
                  f"{exercise.points:g}", ""]
        mine = [o for o in result.outcomes if o.exercise == exercise.id]
        if mine and all(o.status == "not implemented" for o in mine):
            lines += ["· not written yet: the function still raises NotImplementedError.", ""]
            continue
        for o in mine:
            line = f"{STATUS_WORDS.get(o.status, '?')} {o.test.description}"
            if o.status != "passed":
                line += f" — {o.status}: {o.message}" if o.message else f" — {o.status}"
            lines.append(line + "  ")
        lines.append("")
    if result.cell_problems:
        lines += ["## Cells that failed when the grader ran your notebook", "",
                  "The grader runs " + ("only your imports, functions, classes and constants"
                                        if assignment.execute == "definitions" else "every code cell") +
                  "; a failing cell may leave names undefined.", ""]
        lines += [f"- {p}" for p in result.cell_problems] + [""]
    if result.blocked:
        lines += ["## Refused by the grading sandbox", ""] + [f"- {b}" for b in result.blocked] + [""]
    if result.written:
        lines += ["## Written answers (marked by hand)", ""]
        for question, answer in result.written:
            if not answer or answer == WRITTEN_PLACEHOLDER:
                answer = "(not answered)"
            lines += [f"> {line}".rstrip() for line in question.splitlines()] + ["", answer, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_feedback(assignment: Assignment, results: list[Result], folder) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        (folder / f"{r.student}.md").write_text(feedback_text(assignment, r), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cab420-grade",
                                     description="Mark a folder of submitted notebooks against an assignment's "
                                                 "hidden tests.",
                                     epilog="See docs/instructors.md.")
    parser.add_argument("assignment", type=Path, help="assignment folder (assignment.toml + hidden tests)")
    parser.add_argument("submissions", type=Path, help="folder of submissions: <student>.ipynb or <student>/")
    parser.add_argument("--out", type=Path, default=Path("marks.csv"), help="marks CSV (default: marks.csv)")
    parser.add_argument("--feedback", type=Path, help="feedback folder (default: feedback/ beside --out)")
    parser.add_argument("--gradebook", type=Path, help="also write a gradebook CSV: student id and total")
    parser.add_argument("--gradebook-id-column", default="Student ID", help="its identifier column's header")
    parser.add_argument("--gradebook-column", help="its grade column's header (default: title and maximum)")
    parser.add_argument("--id-pattern", help="regex picking the student id out of a file or folder name "
                                             "(its group 'id', or the whole match)")
    parser.add_argument("--jobs", type=int, help="submissions graded at once (default: one per core this process "
                                                 "may use, 1.5 GB of memory each; a container's limits count)")
    parser.add_argument("--time-limit", type=float, help="seconds per submission (overrides assignment.toml)")
    parser.add_argument("--memory-limit", type=int, help="MB per submission (overrides assignment.toml)")
    parser.add_argument("--keep-sandboxes", type=Path, metavar="DIR",
                        help="leave each run's folder (its output.log) under DIR, to debug a submission")
    args = parser.parse_args(argv)
    try:
        assignment = Assignment.load(args.assignment)
        if args.time_limit:
            assignment.time_limit = args.time_limit
        if args.memory_limit:
            assignment.memory_limit_mb = args.memory_limit
        started = time.perf_counter()
        results = grade(assignment, args.submissions, args.jobs, args.id_pattern, args.keep_sandboxes)
    except AssignmentError as error:
        print(f"cab420-grade: {error}", file=sys.stderr)
        return 2
    write_marks(assignment, results, args.out)
    feedback = args.feedback or args.out.parent / "feedback"
    write_feedback(assignment, results, feedback)
    if args.gradebook:
        write_gradebook(assignment, results, args.gradebook, args.gradebook_id_column, args.gradebook_column)
    print(f"Graded {len(results)} submission(s) in {time.perf_counter() - started:.0f} s: marks in {args.out}, "
          f"feedback in {feedback}/" + (f", gradebook in {args.gradebook}" if args.gradebook else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
