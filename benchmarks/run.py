"""Benchmarks (not tests), in one run on one machine:

1. how fast the vectorised samplers are, against a straightforward per-sample
   Python loop and against the training step they feed (targets: sampling
   >= 50x the loop and >= 20x the training step);
2. each notebook's fast-profile wall time, as its last run recorded it in
   ``build/results/<notebook>.json`` (``seconds``; "not measured" when no fast run
   recorded one) — read, never re-run;
3. with ``--memory``, the peak memory (max RSS) of the heaviest notebook (the one
   with the longest recorded time, or the one named), measured by executing it
   once in a child process in the fast profile.  Off by default: a notebook takes
   minutes of every core.

    python3 tools/course.py bench                   # or: .venv/bin/python benchmarks/run.py
    python3 tools/course.py bench --memory          # + execute the heaviest notebook once
    python3 tools/course.py bench --memory 03 --no-sampling
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# cab420utils.sampling (and with it Keras and TensorFlow) is imported only where the sampler
# benchmarks need it: the --memory child stays small, so the kernel it starts inherits no
# large peak (Linux keeps ru_maxrss across fork and exec).


def loop_pairs(labels, n_pairs, rng):
    """What a student writes first: one pair at a time."""
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = list(by_class)
    a, b, same = [], [], []
    for i in range(n_pairs):
        if i % 2 == 0:
            c = classes[rng.integers(len(classes))]
            x, y = rng.choice(by_class[c], 2, replace=False)
            same.append(1.0)
        else:
            c1, c2 = rng.choice(len(classes), 2, replace=False)
            x, y = rng.choice(by_class[classes[c1]]), rng.choice(by_class[classes[c2]])
            same.append(0.0)
        a.append(x), b.append(y)
    return np.array(a), np.array(b), np.array(same)


def loop_triplets(labels, n, rng):
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    classes = list(by_class)
    out = []
    for _ in range(n):
        cp, cn = rng.choice(len(classes), 2, replace=False)
        a, p = rng.choice(by_class[classes[cp]], 2, replace=False)
        out.append((a, p, rng.choice(by_class[classes[cn]])))
    return np.array(out).T


def rate(fn, n, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def training_rate(batch_size=256, steps=10):
    import keras

    from cab420utils import models

    x = np.random.default_rng(0).integers(0, 255, (batch_size * steps, 28, 28, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 2, batch_size * steps).astype(np.float32)
    model = models.siamese_bce_model(models.vgg_backbone())
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    model.fit((x, x[::-1]), y, batch_size=batch_size, epochs=1, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit((x, x[::-1]), y, batch_size=batch_size, epochs=1, verbose=0)
    return len(y) / (time.perf_counter() - start)


def sampling_table() -> None:
    from cab420utils import sampling

    labels = np.repeat(np.arange(10), 5500)  # Fashion-MNIST's training split after validation
    n_loop, n_vec = 20_000, 200_000
    rng = np.random.default_rng(0)
    index = sampling.ClassIndex.from_labels(labels)
    rows = [
        ("pairs, vectorised", rate(lambda: sampling.make_pairs(labels, n_vec, rng, index=index), n_vec)),
        ("pairs, per-sample loop", rate(lambda: loop_pairs(labels, n_loop, rng), n_loop, repeats=1)),
        ("triplets, vectorised", rate(lambda: sampling.make_triplets(labels, n_vec, rng, index=index), n_vec)),
        ("triplets, per-sample loop", rate(lambda: loop_triplets(labels, n_loop, rng), n_loop, repeats=1)),
    ]
    train = training_rate()
    rows.append(("training step (Siamese BCE, batch 256)", train))
    print(f"{'what':42s} {'items/s':>14s}")
    for name, r in rows:
        print(f"{name:42s} {r:14,.0f}")
    pairs_vs_loop = rows[0][1] / rows[1][1]
    triplets_vs_loop = rows[2][1] / rows[3][1]
    print(f"\npairs: {pairs_vs_loop:,.0f}x the loop, {rows[0][1] / train:,.0f}x training throughput (target 50x, 20x)")
    print(f"triplets: {triplets_vs_loop:,.0f}x the loop, {rows[2][1] / train:,.0f}x training throughput")


# --------------------------------------------------------------------------- notebooks
def results_folders() -> list[Path]:
    """Where runs record results: the course's build (``$CAB420_BUILD``, else build/), then the test job's."""
    build = Path(os.environ.get("CAB420_BUILD") or ROOT / "build")
    return list(dict.fromkeys([build / "results", ROOT / "build" / "results", ROOT / "build" / "test" / "results"]))


def recorded_runs(stems, folders) -> dict[str, dict | None]:
    """For each notebook, its most recent fast-profile record that has ``seconds`` (None if none)."""
    found = {}
    for stem in stems:
        records = []
        for folder in folders:
            path = folder / f"{stem}.json"
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("profile") == "fast" and \
                    isinstance(record.get("seconds"), (int, float)):
                records.append((path.stat().st_mtime, {**record, "path": path}))
        found[stem] = max(records, key=lambda r: r[0])[1] if records else None
    return found


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def notebook_table(stems, runs) -> None:
    width = max([len("notebook")] + [len(s) for s in stems])
    print(f"{'notebook':{width}s}  {'fast profile, wall time':24s}  {'device':16s}  recorded in")
    for stem in stems:
        run = runs[stem]
        if run is None:
            print(f"{stem:{width}s}  not measured")
            continue
        where = os.path.relpath(run["path"], ROOT)
        wall = f"{_minutes(run['seconds'])} ({run['seconds']:.0f} s)"
        print(f"{stem:{width}s}  {wall:24s}  "
              f"{str(run.get('device', '?')):16s}  {where}")
    measured = [runs[s]["seconds"] for s in stems if runs[s]]
    if measured:
        print(f"{len(measured)} of {len(stems)} notebook(s) measured, {_minutes(sum(measured))} together"
              + ("" if len(measured) == len(stems) else " (the others not measured)"))


def heaviest(stems, runs, wanted: str | None) -> Path:
    """The notebook to measure: the one named (a path, or part of a name), else the slowest recorded."""
    if wanted and Path(wanted).is_file():
        return Path(wanted).resolve()
    if wanted:
        matches = [s for s in stems if wanted in s]
        if len(matches) != 1:
            sys.exit(f"--memory {wanted!r} matches {matches or 'no notebook'} in notebooks/")
        return ROOT / "notebooks" / f"{matches[0]}.ipynb"
    timed = [s for s in stems if runs[s]]
    if not timed:
        sys.exit("--memory: no notebook has a recorded time to pick the heaviest by; name one (--memory 03)")
    return ROOT / "notebooks" / f"{max(timed, key=lambda s: runs[s]['seconds'])}.ipynb"


def measure_memory(notebook: Path, timeout: int) -> dict:
    """Execute ``notebook`` once in a child process (fast profile unless CAB420_PROFILE says otherwise);
    return its wall time and the peak RSS of its kernel, the grandchild that does the work.

    Linux carries a process's peak RSS over into what it forks and execs, so the child is kept small
    (no TensorFlow): the kernel's figure is its own peak, or the child's ~80 MiB if that were larger."""
    with tempfile.TemporaryDirectory(prefix="cab420-bench-") as build:
        env = dict(os.environ, CAB420_BUILD=build)  # the measuring run leaves the course's results alone
        env.setdefault("CAB420_PROFILE", "fast")
        env.pop("MPLBACKEND", None)
        done = subprocess.run([sys.executable, __file__, "--measure-child", str(notebook), "--timeout", str(timeout)],
                              env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("MEMORY ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"measuring {notebook.name} failed (exit {done.returncode}):\n"
                 f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("MEMORY "))


def measure_child(notebook: Path, timeout: int) -> None:
    """In the child: execute the notebook, then report the kernel's peak RSS (RUSAGE_CHILDREN: the
    largest of the waited-for descendants, here the kernel)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_course", ROOT / "tools" / "render_course.py")
    render_course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_course)
    out = Path(os.environ["CAB420_BUILD"]) / "executed" / notebook.name
    ok, seconds, error = render_course.execute_notebook(notebook, out, timeout=timeout)
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    print("MEMORY " + json.dumps({
        "notebook": notebook.stem, "ok": ok, "error": error, "seconds": round(seconds, 1),
        "profile": os.environ.get("CAB420_PROFILE"),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1024, 1)}))


def machine_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from cab420utils.limits import usable_cores

    try:
        tf_version = version("tensorflow")
    except PackageNotFoundError:
        tf_version = "not installed"
    return (f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')} · {platform.machine()}, "
            f"{usable_cores()} cores · Python {platform.python_version()} · TensorFlow {tf_version}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory", nargs="?", const="", default=None, metavar="NOTEBOOK",
                        help="execute one notebook (default: the slowest recorded; or a name part or path) "
                             "in a child process and report its peak memory")
    parser.add_argument("--no-sampling", action="store_true", help="skip the sampler benchmarks")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout for --memory (s)")
    parser.add_argument("--measure-child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.measure_child:
        measure_child(args.measure_child, args.timeout)
        return
    print(f"Benchmarks · {machine_line()}\n")
    if not args.no_sampling:
        sampling_table()
        print()
    stems = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    runs = recorded_runs(stems, results_folders())
    notebook_table(stems, runs)
    print()
    if args.memory is None:
        print("peak memory (max RSS) of the heaviest notebook: not measured (run with --memory)")
        return
    notebook = heaviest(stems, runs, args.memory or None)
    print(f"executing {notebook.name} once to measure its memory ...", flush=True)
    m = measure_memory(notebook, args.timeout)
    status = "ok" if m["ok"] else f"FAILED: {m['error']}"
    print(f"peak memory (max RSS) of {m['notebook']}: {m['max_rss_mib']:,.0f} MiB (its kernel) · "
          f"{m['profile']} profile · {_minutes(m['seconds'])} · {status}")


if __name__ == "__main__":
    main()
