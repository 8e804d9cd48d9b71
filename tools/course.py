#!/usr/bin/env python3
"""Set up the course's environment and run its jobs, with nothing but python3.

    python3 tools/course.py test      # set up, then unit tests + every notebook under nbval
    python3 tools/course.py course    # set up, then execute every notebook and render build/site/
    python3 tools/course.py bench     # set up, then the benchmarks
    python3 tools/course.py rehearse  # set up, then rehearse the full profile on this machine (minutes)
    python3 tools/course.py lab       # set up, then open the course in JupyterLab (students, lecturers)
    python3 tools/course.py setup     # only create/refresh .venv

Set-up is idempotent: ``.venv`` is (re)installed only when pyproject.toml or
the requested extras changed.  ``--gpu`` adds the CUDA wheels (``.[gpu]``).
``test`` also makes sure a headless browser is there for the rendered-site test
(Debian's ``chromium``, installed with apt-get when running as root; otherwise
that test skips, or fails under ``CAB420_REQUIRE_BROWSER=1``).
This file uses the standard library only, so it runs before anything is installed.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("CAB420_VENV", ROOT / ".venv"))
SHARED_DATA = ROOT.parent / "shared" / "datasets"


def _load_limits():
    """``cab420utils/limits.py`` by its path: it needs only the standard library, while importing it through the
    package would run ``cab420utils/__init__``, which needs NumPy (not there before set-up)."""
    spec = importlib.util.spec_from_file_location("cab420_limits", ROOT / "cab420utils" / "limits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


usable_cores = _load_limits().usable_cores


# The Pythons the pinned packages have wheels for: TensorFlow 2.21 for 3.10-3.13, but NumPy 2.4 and
# Keras 3.15 need 3.11 or newer.  pyproject.toml's requires-python says the same (a test checks).
SUPPORTED_PYTHON = ((3, 11), (3, 13))


def python_problem(version=None) -> str | None:
    """Why ``version`` (this interpreter's by default) cannot install the course, in words; None if it can."""
    version = tuple(sys.version_info[:3] if version is None else version)
    (low, high), found = SUPPORTED_PYTHON, ".".join(map(str, version))
    if low <= version[:2] <= high:
        return None
    wanted = ", ".join(f"3.{minor}" for minor in range(low[1], high[1] + 1))
    oldest, suggested = f"3.{low[1]}", f"3.{high[1] - 1}"
    return (f"This is Python {found} ({sys.executable}); the course's pinned packages (TensorFlow 2.21, "
            f"NumPy 2.4, Keras 3.15) are published for Python {wanted} only.\n"
            f"Install one of those and run this command with it, e.g. `python{suggested} tools/course.py test`:\n"
            f"  Debian 12, Ubuntu 22.04 or newer: sudo apt-get install python{oldest} python{oldest}-venv\n"
            f"  macOS: brew install python@{suggested}    Windows: python.org's installer, then "
            f"py -{suggested} tools/course.py test\n"
            f"  conda: conda create -n cab420-python python={oldest}, then "
            f"conda run -n cab420-python python tools/course.py test")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup(extras: str) -> Path:
    """Create ``.venv`` and install the project with ``extras`` unless already done."""
    stamp = VENV / ".cab420-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == want and venv_python().exists():
        return venv_python()
    if not venv_python().exists():
        problem = python_problem()
        if problem:
            sys.exit(problem)
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as error:  # Debian ships venv's pip separately
            sys.exit(f"Could not create {VENV}: {error}\n"
                     "On Debian/Ubuntu install the venv module first: sudo apt-get install python3-venv")
    print(f"Installing the course's packages into {VENV} (extras: {extras}); the first time takes a few minutes ...",
          flush=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(want + "\n")
    return venv_python()


BROWSER_VARIABLE = "CAB420_CHROMIUM"  # the browser the site test drives; found or installed by ensure_chromium
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_PACKAGE = "chromium"  # Debian's package: /usr/bin/chromium


def find_chromium() -> str | None:
    """``$CAB420_CHROMIUM`` if it names a program, else the first Chromium on PATH."""
    given = os.environ.get(BROWSER_VARIABLE)
    if given and shutil.which(given):
        return shutil.which(given)
    return next((shutil.which(name) for name in BROWSER_NAMES if shutil.which(name)), None)


def ensure_chromium() -> str | None:
    """Find Chromium or, as root with apt-get, install Debian's package once, quietly.

    Returns the browser's path, or None (after saying why) when it is not there
    and cannot be installed here; the site test then skips, or fails when
    ``CAB420_REQUIRE_BROWSER=1``.  ``CAB420_INSTALL_BROWSER=0`` turns installing off.
    """
    found = find_chromium()
    if found or os.environ.get("CAB420_INSTALL_BROWSER") == "0":
        return found
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        print(f"No Chromium found; the rendered-site test needs one: install Debian's '{BROWSER_PACKAGE}' "
              f"(sudo apt-get install {BROWSER_PACKAGE}) or point {BROWSER_VARIABLE} at a Chromium/Chrome.",
              flush=True)
        return None
    print(f"Installing Debian's {BROWSER_PACKAGE} for the rendered-site test (apt-get, once) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [apt, "install", "-y", "-qq", "--no-install-recommends", BROWSER_PACKAGE]
    log = []

    def quiet(command) -> bool:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.append(done.stdout)
        return done.returncode == 0

    # the package lists may be missing or stale on a fresh machine: update only when installing fails
    if not quiet(install) and not (quiet([apt, "update", "-qq"]) and quiet(install)):
        tail = "\n".join("".join(log).strip().splitlines()[-8:])
        print(f"Could not install {BROWSER_PACKAGE} with apt-get:\n{tail}", flush=True)
        return None
    return find_chromium()


def course_env(profile_default: str, build: Path) -> dict:
    """The environment the jobs run in: data from ../shared/datasets when it is
    there and nothing else was configured; build outputs in ``build``."""
    env = dict(os.environ)
    if not env.get("CAB420_DATA") and SHARED_DATA.is_dir():
        env["CAB420_DATA"] = str(SHARED_DATA)
    if env.get("CAB420_DATA"):
        env["CAB420_DATA"] = str(Path(env["CAB420_DATA"]).expanduser().resolve())  # notebooks run in notebooks/
    env.setdefault("CAB420_PROFILE", profile_default)
    env.setdefault("CAB420_BUILD", str(build))
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # On a GPU TensorFlow maps nearly all of its memory in the first process that uses it; pytest keeps its
    # process (and TensorFlow) alive while nbval starts a kernel per notebook, so each takes only what it needs.
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env["PATH"] = f"{venv_python().parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MPLBACKEND", None)
    return env


def notebook_folders() -> list[str]:
    return [str(ROOT / d) for d in ("notebooks", "solutions", "exercises") if any((ROOT / d).glob("*.ipynb"))]


# On two or more cores the test command runs two pytest processes side by side ("lanes"): a notebook keeps
# only about 1.3 cores busy, so two at once take about a sixth less time on the 2-core CI machines than one
# after the other (docs/timings.md).  Lane 1 holds the unit tests and the notebooks named here, chosen so the
# lanes take about the same time; lane 2 every other notebook in order, then the solutions and the student
# copies.  So notebook 08 runs before notebook 09 and the 08/09 exercises, which load the ARC it saves, in
# the same lane, and a notebook added later is never left out.  CAB420_TEST_LANES=1 runs one process.
LANE_ONE_NOTEBOOKS = ("01-", "03-", "04-", "05-", "06-")


def lane_paths(lanes: int) -> list[list[str]]:
    """The paths each pytest process of the test command is given, in order."""
    if lanes < 2:
        return [[str(ROOT / "tests"), *notebook_folders()]]
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    first = [str(path) for path in notebooks if path.name.startswith(LANE_ONE_NOTEBOOKS)]
    second = [str(path) for path in notebooks if str(path) not in first]
    second += [folder for folder in notebook_folders() if Path(folder).name != "notebooks"]
    return [[str(ROOT / "tests"), *first], second]


def named_paths(extra_args: list[str]) -> list[str]:
    """The test files, folders or notebooks (``path::test`` too) among the arguments after ``test``."""
    return [arg for arg in extra_args if not arg.startswith("-") and Path(arg.split("::")[0]).exists()]


def pytest_lanes(env: dict, extra_args: list[str]) -> list[list[str]]:
    """The paths each pytest process of the test command is given: one process with no paths of its own where
    the extra arguments name test files or folders (those alone run, as given); one with everything where
    CAB420_TEST_LANES=1 says so or this process may use one core only (its affinity or its container's CPU
    quota, ``cab420utils/limits.py``); else two lanes (:func:`lane_paths`)."""
    wanted = env.get("CAB420_TEST_LANES", "").strip()
    if wanted and wanted not in ("1", "2"):
        raise SystemExit(f"CAB420_TEST_LANES must be 1 or 2, not {wanted!r}")
    if named_paths(extra_args):
        return [[]]
    return lane_paths(1 if wanted == "1" or usable_cores() < 2 else 2)


# pytest's closing line, e.g. "===== 2 failed, 300 passed, 1 skipped, 4 warnings in 81.20s (0:01:21) ====="
PYTEST_SUMMARY = re.compile(r"^=+ (.*\b(?:passed|failed|skipped|errors?|no tests ran)\b.*) in [\d.]+s\b")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)\b")


def pytest_counts(line: str) -> dict[str, int] | None:
    """The counts in pytest's closing line ("error" and "errors" both as "error"), or None for another line."""
    summary = PYTEST_SUMMARY.match(line.strip())
    if summary is None:
        return None
    return {word.rstrip("s") if word.startswith("error") else word: int(n)
            for n, word in PYTEST_COUNT.findall(summary.group(1))}


def closing_line(counts: list[dict[str, int] | None]) -> str:
    """One plain line for the lanes together, "total: N passed, N failed[, N skipped]" (errors count as
    failures; a lane that printed no closing line, a crash, counts one failure so the total never looks clean)."""
    crashed = sum(c is None for c in counts)
    counts = [c for c in counts if c is not None]
    passed, skipped = (sum(c.get(word, 0) for c in counts) for word in ("passed", "skipped"))
    failed = crashed + sum(c.get("failed", 0) + c.get("error", 0) for c in counts)
    return f"total: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


def _run_side_by_side(commands: list[list[str]], env: dict) -> list[tuple[int, float, dict | None]]:
    """Run the commands at once, each line of their output prefixed with its lane; (rc, seconds, the counts
    of pytest's closing line or None) each."""
    lock, started = threading.Lock(), time.monotonic()
    finished: list[float] = [0.0] * len(commands)
    counts: list[dict | None] = [None] * len(commands)
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace") for command in commands]

    def pump(k: int, process: subprocess.Popen) -> None:
        for line in process.stdout:
            counts[k] = pytest_counts(line) or counts[k]
            with lock:
                sys.stdout.write(f"[lane {k + 1}] {line}")
                sys.stdout.flush()
        process.wait()
        finished[k] = time.monotonic() - started

    threads = [threading.Thread(target=pump, args=(k, process)) for k, process in enumerate(processes)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    return [(process.returncode, seconds, count) for process, seconds, count in zip(processes, finished, counts)]


def run_tests(python: Path, extra_args: list[str]) -> int:
    env = course_env("fast", ROOT / "build" / "test")
    browser = ensure_chromium()
    if browser:
        env[BROWSER_VARIABLE] = browser
    # `test tests/test_losses.py -k margin` runs what it names; a bare `test` runs everything
    lanes = pytest_lanes(env, extra_args)
    print(f"Testing with CAB420_PROFILE={env['CAB420_PROFILE']}, CAB420_DATA={env.get('CAB420_DATA', '(unset)')}"
          + (f", in {len(lanes)} pytest processes side by side (CAB420_TEST_LANES=1 for one)" if len(lanes) > 1
             else ""), flush=True)
    command = [str(python), "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=3600", *extra_args]
    if len(lanes) == 1:
        codes = [subprocess.run([*command, *lanes[0]], cwd=ROOT, env=env).returncode]
    else:   # a line for each test (pytest's dots would reach the screen only at the end of a notebook's
        # line), and each lane its own pytest cache, so the two never write one file at once
        outcomes = _run_side_by_side([[*command, "-v", "-o", f"cache_dir=.pytest_cache/lane{k + 1}", *paths]
                                      for k, paths in enumerate(lanes)], env)
        for k, (paths, (rc, seconds, _)) in enumerate(zip(lanes, outcomes)):
            names = ", ".join(Path(path).name for path in paths)
            verdict = "passed" if rc == 0 else f"FAILED (pytest's exit status {rc})"
            print(f"lane {k + 1}: {verdict} in {seconds / 60:.1f} min: {names}", flush=True)
        print(closing_line([count for _, _, count in outcomes]), flush=True)
        codes = [rc for rc, _, _ in outcomes]
    if 5 in codes:  # pytest: "no tests were collected" — never a pass
        print("pytest collected no tests: check that tests/ and notebooks/ exist in this checkout.", file=sys.stderr)
        return 1
    return next((rc for rc in codes if rc != 0), 0)


def run_rehearsal(python: Path, extra_args: list[str]) -> int:
    """The full profile's code end to end with every budget cut (CAB420_REHEARSAL=1), into
    build/rehearsal/: minutes on a CPU, before hours of a GPU are spent on it."""
    env = course_env("full", ROOT / "build" / "rehearsal")   # --rehearse sets CAB420_REHEARSAL=1
    print(f"Rehearsing the {env['CAB420_PROFILE']} profile (CAB420_REHEARSAL=1: every training budget cut; "
          "the numbers mean nothing) into build/rehearsal/", flush=True)
    return subprocess.run([str(python), str(ROOT / "tools" / "render_course.py"), "--rehearse", "--notebooks",
                           str(ROOT / "notebooks"), "--build", env["CAB420_BUILD"], *extra_args],
                          cwd=ROOT, env=env).returncode


def run_course(python: Path, extra_args: list[str]) -> int:
    env = course_env("auto", ROOT / "build")
    return subprocess.run([str(python), str(ROOT / "tools" / "render_course.py"), "--notebooks",
                           str(ROOT / "notebooks"), "--build", env["CAB420_BUILD"], *extra_args],
                          cwd=ROOT, env=env).returncode


def run_bench(python: Path, extra_args: list[str]) -> int:
    env = course_env("fast", ROOT / "build")
    return subprocess.run([str(python), str(ROOT / "benchmarks" / "run.py"), *extra_args], cwd=ROOT,
                          env=env).returncode


def lab_command(python: Path, extra_args: list[str]) -> list[str]:
    """JupyterLab on the repository's root, so the file browser shows notebooks/, exercises/ and the
    README; arguments after ``lab`` go to JupyterLab (``--no-browser``, ``--port 8890`` ...).  As root
    (a container) it passes ``--allow-root``, without which JupyterLab refuses to start."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [str(python), "-m", "jupyterlab", f"--notebook-dir={ROOT}", *(["--allow-root"] if as_root else []),
            *extra_args]


def run_lab(python: Path, extra_args: list[str]) -> int:
    """Work through the course interactively, in the environment the jobs use: the chosen profile
    (``auto`` unless CAB420_PROFILE says otherwise), the data found as the tests find them, results and
    notebook 08's saved ARC in build/ (so notebook 09 finds it), TensorFlow as Keras' backend."""
    env = course_env("auto", ROOT / "build")
    print(f"Opening JupyterLab on {ROOT} (CAB420_PROFILE={env['CAB420_PROFILE']}, "
          f"CAB420_DATA={env.get('CAB420_DATA', '(unset: the usual places, then download)')}). "
          "Start with notebooks/01-siamese-bce.ipynb; Ctrl-C here stops JupyterLab.", flush=True)
    try:
        return subprocess.run(lab_command(python, extra_args), cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=("setup", "test", "course", "bench", "rehearse", "lab"))
    parser.add_argument("--gpu", action="store_true", help="install TensorFlow's CUDA wheels too (extra 'gpu')")
    args, rest = parser.parse_known_args(argv)
    python = setup("dev,gpu" if args.gpu else "dev")
    jobs = {"setup": lambda p, r: 0, "test": run_tests, "course": run_course, "bench": run_bench,
            "rehearse": run_rehearsal, "lab": run_lab}
    return jobs[args.job](python, rest)


if __name__ == "__main__":
    sys.exit(main())
