#!/usr/bin/env python3
"""Run the course's full profile on a GPU machine that has JAX but no TensorFlow, Keras or Jupyter.

The GPU machine this workplace lends (an NVIDIA H200) holds PyTorch, JAX, NumPy, matplotlib, seaborn and
scikit-learn, no TensorFlow, and can fetch nothing.  The course runs there on Keras' JAX backend; what it
lacks travels with the working tree (64 MiB at most): Keras and the notebook runner as wheels, and the
datasets the chosen notebooks read.  Three steps:

    .venv/bin/python tools/device_kit.py prepare --only 08 09     # here: .device/ (wheels + data), sized
    python3 tools/device_kit.py run --only 08 09 --deadline 540 --arc-seconds 140   # there, its own python3
    .venv/bin/python tools/device_kit.py collect RUN.tar.gz         # here: build/device/site/, a table

``prepare`` works out what the machine lacks from this environment's installed packages (Keras, ipykernel,
nbclient and everything they need, less what the machine is known to hold, :data:`DEVICE_HAS`), downloads
those versions as wheels for the machine's Python (3.12, x86-64 Linux), copies the data files the chosen
notebooks load, and refuses a kit that would not fit.  ``run`` installs the wheels into /tmp/site, then
executes the notebooks one by one (``KERAS_BACKEND=jax``, ``CAB420_PROFILE=full``) within ``--deadline``
seconds, each cell's time limit what is left (``--arc-seconds``: a time cap on each ARC training,
``CAB420_ARC_SECONDS``, so that 08's and 09's long trainings fit the device's minutes), and leaves
``$OUT/device-run.tar.gz`` (executed copies, the results JSON, saved models, ``summary.json``) however far
it got.  ``collect`` unpacks that, renders it with tools/render_course.py and prints each notebook's seconds
and metrics for the README.

The device tool's call, once ``prepare`` has run: command ``python3 tools/device_kit.py run --only 08 09
--deadline 540 --arc-seconds 140``, carry ``[".device"]``, timeout_s 590.  See the README ("The full profile").
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".device"               # in .gitignore: travels only when the device call names it in carry
LIMIT_MIB = 64                       # what may travel in one device call: working tree and carried paths
SITE = Path("/tmp/site")             # where run() installs the wheels on the device machine
SUGGESTED_ARC_SECONDS = 140          # the time cap prepare suggests: 08 and 09 each train 140 s of a 540 s run

#: Distributions the lent H200's image holds (the workplace's package list, read 2026-11-17; KINDS.md),
#: normalised.  What the course needs beyond these travels as wheels.
DEVICE_HAS = frozenset("""
absl-py attrs certifi charset-normalizer contourpy cycler fonttools h5py idna jinja2 joblib kiwisolver
markupsafe matplotlib ml-dtypes numpy packaging pandas pillow pip psutil pygments pyparsing python-dateutil
pytest pyyaml requests rich scikit-learn scipy seaborn setuptools six threadpoolctl typing-extensions
urllib3 wheel jax jaxlib markdown-it-py mdurl tzdata pytz
""".split())
#: What the notebooks need there: Keras (the course's code) and a Jupyter kernel with nbclient (to execute
#: the notebooks as the course job does and bring back executed copies to render here).
ROOTS = ("keras", "ipykernel", "nbclient", "nbformat")
#: Required by those but not used for running notebooks: ipykernel starts without debugpy (no debugger),
#: and debugpy is the largest wheel of all.
SKIP = frozenset({"debugpy"})
DEVICE_PYTHON = "3.12"
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64",
             "manylinux_2_34_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64"]
#: The data files each notebook loads (the loaders find them through CAB420_DATA and check their SHA-256).
FASHION = ("fashion-mnist/train-images-idx3-ubyte.gz", "fashion-mnist/train-labels-idx1-ubyte.gz",
           "fashion-mnist/t10k-images-idx3-ubyte.gz", "fashion-mnist/t10k-labels-idx1-ubyte.gz")
OMNIGLOT = ("omniglot/images_background.npz", "omniglot/images_evaluation.npz", "omniglot/all_runs.zip",
            "omniglot/LICENSE")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- prepare (here)
def needed_distributions(roots=ROOTS, has=DEVICE_HAS, skip=SKIP, python_version=DEVICE_PYTHON) -> dict[str, str]:
    """``{name: version}`` of every distribution ``roots`` need (their requirements, recursively, as this
    environment has them installed), less those in ``has`` and ``skip``; markers are read for Linux and
    ``python_version``, extras left out."""
    from importlib import metadata

    from packaging.requirements import Requirement

    marker_env = {"python_version": python_version, "python_full_version": python_version + ".0",
                  "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                  "platform_machine": "x86_64", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "extra": ""}
    found, todo = {}, [normalise(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in found or name in skip:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here: run prepare with the course's environment "
                             f"(.venv/bin/python tools/device_kit.py prepare; python3 tools/course.py setup makes it)")
        found[name] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(marker_env):
                todo.append(normalise(requirement.name))
    return {name: version for name, version in sorted(found.items()) if name not in has}


def notebooks_matching(patterns, folder: Path = ROOT / "notebooks") -> list[Path]:
    every = sorted(Path(folder).glob("*.ipynb"))
    chosen = [p for p in every if not patterns or any(pattern in p.name for pattern in patterns)]
    if not chosen:
        raise SystemExit(f"no notebook in {folder} matches {' '.join(patterns or ['*'])}")
    return chosen


def data_files(notebooks) -> list[str]:
    """The data files ``notebooks`` load: Fashion-MNIST for 01-07, Omniglot for 08 and 09."""
    files = []
    for path in notebooks:
        number = int(path.name[:2])
        for rel in (OMNIGLOT if number >= 8 else FASHION):
            if rel not in files:
                files.append(rel)
    return files


def travelling_bytes(extra: Path) -> int:
    """What one device call sends: the working tree's tracked and untracked-not-ignored files, and ``extra``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    tree = sum((ROOT / os.fsdecode(name)).stat().st_size for name in listed
               if name and (ROOT / os.fsdecode(name)).is_file())
    return tree + sum(f.stat().st_size for f in extra.rglob("*") if f.is_file())


def prepare(args) -> int:
    notebooks = notebooks_matching(args.only)
    wanted = needed_distributions(python_version=args.python_version)
    data_root = Path(args.data or os.environ.get("CAB420_DATA") or ROOT.parent / "shared" / "datasets")
    files = data_files(notebooks)
    missing = [rel for rel in files if not (data_root / rel).is_file()]
    if missing:
        raise SystemExit(f"{data_root} lacks {', '.join(missing)}: point --data (or CAB420_DATA) at a folder laid "
                         "out like ../shared/datasets")
    shutil.rmtree(KIT, ignore_errors=True)
    wheels, datasets = KIT / "wheels", KIT / "datasets"
    wheels.mkdir(parents=True)
    print(f"Wheels for Python {args.python_version} on x86-64 Linux ({len(wanted)}): "
          + ", ".join(f"{n}=={v}" for n, v in wanted.items()), flush=True)
    platforms = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--only-binary=:all:", "--python-version", args.python_version, "--implementation", "cp",
                    *platforms, "-d", str(wheels), *(f"{n}=={v}" for n, v in wanted.items())], check=True)
    for rel in files:
        (datasets / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / rel, datasets / rel)
    if args.models:                          # comparators trained earlier (08's ARC), so 09 need not retrain one
        (KIT / "models").mkdir()
    for model in map(Path, args.models or []):
        for part in (model, model.with_name(model.name[:-len(".weights.h5")] + ".json")):   # weights and card
            shutil.copyfile(part, KIT / "models" / part.name)
    (KIT / "kit.json").write_text(json.dumps({"notebooks": [p.name for p in notebooks], "data": files,
                                              "wheels": wanted, "python": args.python_version}, indent=1))
    total = travelling_bytes(KIT) / 2**20
    print(f"{KIT.relative_to(ROOT)}/: {len(wanted)} wheels, {len(files)} data files; one call sends {total:.1f} MiB "
          f"of at most {LIMIT_MIB}")
    if total > LIMIT_MIB - 1:
        print(f"Too large for one call: choose fewer notebooks (--only), or leave out {data_root}'s biggest files.",
              file=sys.stderr)
        return 1
    only = " ".join(args.only or [])
    print("The device call: command "
          f"'python3 tools/device_kit.py run{' --only ' + only if only else ''} --deadline 540 "
          f"--arc-seconds {SUGGESTED_ARC_SECONDS}', "
          "carry ['.device'], timeout_s 590")
    return 0


# --------------------------------------------------------------------------- run (there)
def install_wheels(kit: Path = KIT, site: Path = SITE) -> None:
    """Install the kit's wheels into ``site`` (once per machine) and put it, and the course, on the path."""
    wheels = sorted(str(p) for p in (kit / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"{kit / 'wheels'} holds no wheels: run prepare here first, and name .device in carry")
    if not (site / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--disable-pip-version-check", "--upgrade", "--target", str(site),
                        *wheels], check=True)
        (site / ".installed").write_text("\n".join(wheels))
    path = [str(site), str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(path)   # the kernels' too: they inherit the environment
    sys.path[:0] = [str(site), str(ROOT)]


def device_facts() -> dict:
    facts = {"python": sys.version.split()[0]}
    try:
        facts["nvidia-smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                              "--format=csv,noheader"], capture_output=True, text=True,
                                             timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        facts["nvidia-smi"] = None
    probe = ("import json, jax, keras, numpy; print(json.dumps({'jax': jax.__version__, 'keras': keras.__version__,"
             " 'numpy': numpy.__version__, 'devices': [f'{d.platform}:{d.device_kind}' for d in jax.devices()]}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND="jax"), timeout=300)
    facts.update(json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                 else {"probe error": done.stderr[-2000:]})
    return facts


def run(args) -> int:
    started = time.monotonic()
    kit = Path(args.kit)
    install_wheels(kit, Path(args.site))
    sys.path.insert(0, str(ROOT / "tools"))
    from render_course import execute_notebook, _run_info

    out = Path(os.environ.get("OUT") or args.out)
    out.mkdir(parents=True, exist_ok=True)
    build = Path(args.build).resolve()
    build.mkdir(parents=True, exist_ok=True)
    if (kit / "models").is_dir():
        shutil.copytree(kit / "models", build / "models", dirs_exist_ok=True)
    env = dict(os.environ, KERAS_BACKEND="jax", CAB420_PROFILE=args.profile, CAB420_BUILD=str(build),
               CAB420_DATA=str((kit / "datasets").resolve()), XLA_PYTHON_CLIENT_PREALLOCATE="false",
               PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)
    if args.rehearse:
        env["CAB420_REHEARSAL"] = "1"
    if args.arc_seconds is not None:
        env["CAB420_ARC_SECONDS"] = f"{args.arc_seconds:g}"
    summary = {"device": device_facts(), "profile": args.profile, "rehearsal": bool(args.rehearse),
               "deadline_s": args.deadline, "arc_seconds": args.arc_seconds, "notebooks": []}
    print(json.dumps(summary["device"]), flush=True)
    broken = "probe error" in summary["device"]      # Keras or JAX does not start there: no notebook would
    for path in notebooks_matching(args.only, args.notebooks):
        left = args.deadline - (time.monotonic() - started)
        if broken:
            summary["notebooks"].append({"notebook": path.stem, "ok": None, "error": "not started: Keras on JAX "
                                         "failed to start (summary.json, device, probe error)"})
            continue
        if left < 30:
            summary["notebooks"].append({"notebook": path.stem, "ok": None, "error": "not started: deadline"})
            continue
        print(f"[run] {path.name} ({left:.0f} s left)", flush=True)
        (build / "results" / f"{path.stem}.json").unlink(missing_ok=True)
        ok, seconds, error = execute_notebook(path, build / "executed" / f"{path.stem}.ipynb", timeout=int(left),
                                              env=env, allow_error_names=("AssertionError",) if args.rehearse else ())
        info = _run_info(build / "executed" / f"{path.stem}.ipynb")
        summary["notebooks"].append({"notebook": path.stem, "ok": ok, "seconds": round(seconds, 1), "error": error,
                                     "unmet": info.get("unmet") or []})
        print(f"      {'ok' if ok else 'FAILED'} in {seconds:.1f} s" + (f": {error}" if error else ""), flush=True)
    (build / "summary.json").write_text(json.dumps(summary, indent=1))
    with tarfile.open(out / "device-run.tar.gz", "w:gz") as tar:
        for part in ("executed", "results", "models", "summary.json"):
            if (build / part).exists():
                tar.add(build / part, arcname=part)
    print(f"{out / 'device-run.tar.gz'}: {(out / 'device-run.tar.gz').stat().st_size / 2**20:.1f} MiB", flush=True)
    return 0 if all(n["ok"] for n in summary["notebooks"]) else 1


# --------------------------------------------------------------------------- collect (here)
def collect(args) -> int:
    build = Path(args.build).resolve()
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    with tarfile.open(args.tarball) as tar:
        tar.extractall(build, filter="data")
    rendered = subprocess.run([sys.executable, str(ROOT / "tools" / "render_course.py"), "--no-execute",
                               "--notebooks", str(ROOT / "notebooks"), "--build", str(build)], cwd=ROOT).returncode
    summary = json.loads((build / "summary.json").read_text())
    print(f"\n{summary['device']}\n\n| notebook | status | seconds | metrics |\n| --- | --- | --- | --- |")
    for entry in summary["notebooks"]:
        results = build / "results" / f"{entry['notebook']}.json"
        metrics = []
        if results.is_file():
            record = json.loads(results.read_text())
            metrics = [f"{name} {value:.4g}" for name, value in record.get("metrics", {}).items()
                       if isinstance(value, (int, float))]
        status = "ok" if entry["ok"] else ("not run" if entry["ok"] is None else "FAILED")
        print(f"| {entry['notebook']} | {status} | {entry.get('seconds', '-')} | {'; '.join(metrics)} |")
    return rendered


def _seconds(text: str) -> float:
    """A positive number of seconds, for argparse: the rule of cab420utils.profiles.check_arc_seconds, which
    the notebooks apply to CAB420_ARC_SECONDS, checked here before any device time is spent (the kit runs on
    the device's bare python3 and imports nothing of the course before its wheels are installed)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a number of seconds above 0, e.g. {SUGGESTED_ARC_SECONDS}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest="job", required=True)
    p = jobs.add_parser("prepare", help="here: wheels and data into .device/")
    p.add_argument("--only", nargs="+", metavar="PATTERN", help="notebooks whose file name contains one of these")
    p.add_argument("--data", help="the datasets folder (default: $CAB420_DATA, else ../shared/datasets)")
    p.add_argument("--models", nargs="+", metavar="WEIGHTS", help="saved comparators (*.weights.h5) to take along")
    p.add_argument("--python-version", default=DEVICE_PYTHON, help=f"the machine's Python (default {DEVICE_PYTHON})")
    r = jobs.add_parser("run", help="there: install the wheels, execute the notebooks, pack the results")
    r.add_argument("--only", nargs="+", metavar="PATTERN")
    r.add_argument("--deadline", type=int, default=540, help="seconds for everything (default 540)")
    r.add_argument("--arc-seconds", type=_seconds, metavar="SECONDS",
                   help="a time cap on each ARC training (CAB420_ARC_SECONDS; default: none, the whole budget)")
    r.add_argument("--profile", default="full", choices=("fast", "full"))
    r.add_argument("--rehearse", action="store_true", help="CAB420_REHEARSAL=1: budgets cut, claims not asserted")
    r.add_argument("--build", default=str(ROOT / "build" / "device"))
    r.add_argument("--site", default=str(SITE), help=f"where the wheels are installed (default {SITE})")
    r.add_argument("--kit", default=str(KIT), help="what prepare made (default .device)")
    r.add_argument("--notebooks", default=str(ROOT / "notebooks"), help="folder of notebooks (default notebooks)")
    r.add_argument("--out", default=str(ROOT / "build" / "device-out"), help="where the tarball goes without $OUT")
    c = jobs.add_parser("collect", help="here: unpack a run's tarball and render it")
    c.add_argument("tarball")
    c.add_argument("--build", default=str(ROOT / "build" / "device"))
    args = parser.parse_args(argv)
    return {"prepare": prepare, "run": run, "collect": collect}[args.job](args)


if __name__ == "__main__":
    sys.exit(main())
