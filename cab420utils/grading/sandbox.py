"""The process that grades one submission; the grader starts one per submission.

It reads its job (the notebook's path, the limits, the hidden tests' source)
as JSON on stdin, then, before any of the student's code runs:

* caps its own memory (``RLIMIT_AS``), the size of any file it writes
  (``RLIMIT_FSIZE``) and core dumps;
* sends C-level output (fd 1 and 2) to a log file in its own folder, and
  Python-level output to a buffer that keeps only the first characters, so a
  notebook that prints megabytes costs nothing;
* installs an audit hook (:func:`sys.addaudithook`, which Python code cannot
  remove) that refuses to change any file outside its own folder, to read
  other submissions or the hidden tests, to start programs, to signal other
  processes or to open network connections.

Then it runs the notebook's code cells into one namespace (each cell under a
time limit; a failing cell is recorded and the next one runs, as in Jupyter
when you run all cells and ignore errors), calls every hidden test with the
student's namespace, and reports each result as a JSON line on a private
copy of its original stdout, as it goes, so the grader keeps what finished
even if the process must be killed.

The hook protects against mistakes and naive tricks; it is not a security
boundary against someone set on escaping (``ctypes`` can).  For that, run the
grader in a container without network.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
import types

from .checks import describe_error, is_not_written
from .notebooks import cell_source, compile_cell, read_notebook

MESSAGE_LIMIT = 1500


class SoftTimeout(BaseException):
    """Raised by SIGALRM when a cell or test runs past its limit (a BaseException,
    so ``except Exception`` in the student's loop does not swallow it)."""


class SandboxViolation(PermissionError):
    """What the audit hook raises for a refused operation."""


class MissingName(AssertionError):
    """A hidden test asked for a name the notebook does not define."""


class CappedText(io.TextIOBase):
    """A text stream that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int):
        self.limit, self.total, self._kept = limit, 0, []
        self._kept_length = 0

    def write(self, text) -> int:
        text = str(text)
        self.total += len(text)
        room = self.limit - self._kept_length
        if room > 0:
            self._kept.append(text[:room])
            self._kept_length += min(room, len(text))
        return len(text)

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    def head(self, n: int) -> str:
        return "".join(self._kept)[:n]


class Reporter:
    """JSON lines to the grader, on a file descriptor only this module knows."""

    def __init__(self, fd: int):
        self.fd = fd

    def __call__(self, **event) -> None:
        data = (json.dumps(event, default=str) + "\n").encode()
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except InterruptedError:
                continue
            except OSError:
                return  # the student closed our pipe: the grader reports what it got


def _short(text: str) -> str:
    text = str(text)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + " ..."


# --------------------------------------------------------------------------- limits and the guard
def apply_limits(memory_mb: int, file_mb: int) -> None:
    memory, files = memory_mb * 2 ** 20, file_mb * 2 ** 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write fails instead of killing us


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {  # event -> (description, index of dir_fd in the arguments or None)
    "os.remove": ("deleting", 1), "os.rmdir": ("deleting", 1), "shutil.rmtree": ("deleting", 1),
    "os.mkdir": ("creating a folder at", 2), "os.chmod": ("changing permissions of", 2),
    "os.chown": ("changing the owner of", 3), "os.utime": ("changing the times of", 3),
    "os.truncate": ("truncating", None), "os.listdir": (None, None), "os.scandir": (None, None),
}
_TWO_PATH_EVENTS = {"os.rename": "moving", "os.link": "linking", "os.symlink": "linking"}
_PROGRAM_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn"}
#: Programs that libraries probe while importing (platform.processor(), matplotlib's font search,
#: ctypes.util.find_library); they cope with a refusal, which is therefore not reported.
_QUIET_PROGRAMS = {"uname", "fc-list", "ldconfig", "gcc", "cc", "ld", "objdump"}


def install_guard(root: str, private: list[str], report) -> None:
    """Refuse, from now on, changes outside ``root`` and any access to
    ``private`` folders other than ``root`` (other submissions, hidden tests)."""
    root = os.path.realpath(root)
    private = [os.path.realpath(p) for p in private]
    me = os.getpid()

    def resolve(path, dir_fd=None) -> str | None:
        if isinstance(path, int) or path is None:
            return None  # an open descriptor: already allowed when it was opened
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            try:
                path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
            except OSError:
                return "<unknown folder>"
        return os.path.realpath(path)

    def within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    def deny(what: str, quietly: bool = False):
        if not quietly:
            report(event="blocked", what=_short(what))
        raise SandboxViolation(f"the grading sandbox does not allow {what}")

    def check_path(path, dir_fd=None, change: str | None = None) -> None:
        real = resolve(path, dir_fd)
        if real is None or real == os.devnull or within(real, root):
            return
        if change:
            deny(f"{change} {real} (only files in the notebook's own folder may change)")
        if any(within(real, p) for p in private):
            deny(f"reading {real} (other submissions and the grader's files are private)")

    def hook(event: str, args) -> None:
        if event == "open":
            path, _mode, flags = args
            check_path(path, change="writing to" if flags and flags & _WRITE_FLAGS else None)
        elif event in _PATH_EVENTS:
            change, fd_at = _PATH_EVENTS[event]
            dir_fd = args[fd_at] if fd_at is not None and len(args) > fd_at else None
            check_path(args[0], dir_fd if isinstance(dir_fd, int) else None, change)
        elif event in _TWO_PATH_EVENTS:
            dir_fds = [a for a in args[2:] if isinstance(a, int)] + [None, None]
            check_path(args[0], dir_fds[0], _TWO_PATH_EVENTS[event])
            check_path(args[1], dir_fds[1], _TWO_PATH_EVENTS[event])
        elif event in _PROGRAM_EVENTS:
            program = os.path.basename(os.fsdecode(args[0])) if args and isinstance(args[0], (str, bytes)) else ""
            deny(f"starting another program or process ({event} {program})".replace(" )", ")"),
                 quietly=event == "subprocess.Popen" and program in _QUIET_PROGRAMS)
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill") and args and args[0] not in (me, 0):
            deny(f"signalling another process ({event} {args[0]})")
        elif event == "sqlite3.connect" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            if os.fsdecode(args[0]) != ":memory:":
                check_path(args[0], change="writing a database to")
        elif event == "socket.connect":
            deny("network connections")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------- running the notebook
class Submission:
    """What a hidden test receives: the notebook's names as attributes."""

    def __init__(self, namespace: dict, cells: dict[int, str], problems: dict[int, str]):
        self._namespace, self._cells, self._problems = namespace, cells, problems

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._namespace[name]
        except KeyError:
            pass
        why = f"the notebook defines no `{name}`"
        for index, source in self._cells.items():
            if f"def {name}(" in source or f"{name} =" in source:
                if index in self._problems:
                    why += f": the cell that should define it (cell {index}) failed — {self._problems[index]}"
                    break
        else:
            if self._problems:
                index = min(self._problems)
                why += f" (cell {index} failed — {self._problems[index]})"
            else:
                why += " (was it renamed?)"
        raise MissingName(why) from None


def _where(error: BaseException) -> str:
    """' (cell 5, line 3)' for the innermost frame of the student's code."""
    where = ""
    for frame, line in traceback.walk_tb(error.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith("<cell "):
            where = f" ({name[1:-1]}, line {line})"
    return where


def classify(error: BaseException, limit: float, memory_mb: int, definitions_only: bool = False) -> tuple[str, str]:
    """``(status, message)`` for an exception from a cell or a test."""
    if isinstance(error, NameError) and definitions_only:
        return "error", (f"your code raised {describe_error(error)}{_where(error)}: the grader runs only your "
                         f"imports, functions, classes and constants, so compute it inside your function")
    if isinstance(error, SoftTimeout):
        return "timeout", f"stopped after {limit:g} s: an infinite loop, or far too slow?"
    if is_not_written(error):
        return "not implemented", "not written yet: the stub still raises NotImplementedError"
    if isinstance(error, MissingName):
        return "failed", str(error)
    if isinstance(error, AssertionError) and not _where(error):  # the test's own assert, not the student's
        return "failed", str(error).strip() or "the test's condition does not hold"
    if isinstance(error, MemoryError):
        return "error", f"ran out of memory (the limit is {memory_mb} MB){_where(error)}"
    if isinstance(error, SandboxViolation):
        return "error", f"blocked: {error}{_where(error)}"
    if isinstance(error, ModuleNotFoundError):
        return "error", (f"your code raised {describe_error(error)}{_where(error)}: the grader has only the "
                         f"course's packages (see pyproject.toml)")
    if isinstance(error, SystemExit):
        return "error", f"called exit(){_where(error)}"
    return "error", f"your code raised {describe_error(error)}{_where(error)}"


def _alarm(_signum, _frame):
    raise SoftTimeout()


def limited(seconds: float, function, *args):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _display(*objects, **_kwargs):
    for obj in objects:
        print(repr(obj))


def run_cells(notebook: dict, definitions_only: bool, limit: float, memory_mb: int, report):
    namespace = {"__name__": "__main__", "__builtins__": builtins, "display": _display}
    sources, problems = {}, {}
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        sources[index] = source = cell_source(cell)
        try:
            compiled = compile_cell(source, index, definitions_only)
        except SyntaxError as error:
            problems[index] = f"a syntax error on line {error.lineno}: {error.msg}"
            report(event="cell", cell=index, status="error", message=problems[index])
            continue
        if compiled.code is None:
            continue
        try:
            limited(limit, exec, compiled.code, namespace)
        except BaseException as error:  # noqa: BLE001 - everything the cell does is the student's
            status, message = classify(error, limit, memory_mb)
            problems[index] = message
            report(event="cell", cell=index, status=status, message=_short(message))
    return namespace, sources, problems


def run_tests(job: dict, submission: Submission, report) -> None:
    limit, memory_mb = job["test_time_limit"], job["memory_mb"]
    for exercise in job["exercises"]:
        module = types.ModuleType(f"hidden_{exercise['id']}")
        module.__file__ = f"<hidden {exercise['file']}>"
        try:
            exec(compile(exercise["source"], module.__file__, "exec"), module.__dict__)
        except BaseException as error:  # noqa: BLE001
            report(event="exercise", exercise=exercise["id"], status="grader error",
                   message=_short(f"the hidden tests could not load: {describe_error(error)}"))
            continue
        for name in exercise["tests"]:
            test = getattr(module, name)
            try:
                limited(limit, test, submission)
                status, message = "passed", ""
            except BaseException as error:  # noqa: BLE001
                status, message = classify(error, limit, memory_mb, job["execute"] == "definitions")
            report(event="test", exercise=exercise["id"], test=name, status=status, message=_short(message))


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    report = Reporter(os.dup(1))
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    output = CappedText(job["output_limit"])
    sys.stdout = sys.stderr = output
    sys.stdin = io.StringIO("")  # input() ends at once instead of waiting for ever
    apply_limits(job["memory_mb"], job["file_mb"])
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    report(event="start", pid=os.getpid())
    try:
        notebook = read_notebook(job["notebook"])
    except (OSError, ValueError) as error:
        report(event="unreadable", message=_short(str(error)))
        return 0
    install_guard(job["root"], job["private"], report)
    try:
        namespace, sources, problems = run_cells(notebook, job["execute"] == "definitions", job["cell_time_limit"],
                                                 job["memory_mb"], report)
    except Exception as error:  # noqa: BLE001 - a malformed notebook (cells that are not cells)
        report(event="unreadable", message=_short(f"its cells are malformed ({describe_error(error)})"))
        return 0
    run_tests(job, Submission(namespace, sources, problems), report)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    report(event="done", printed=output.total, head=output.head(500), seconds=time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
