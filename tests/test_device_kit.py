"""tools/device_kit.py: what travels to a GPU machine without TensorFlow, and what comes back.

The kit's wheels are downloaded only when someone prepares a device run (not here); these tests check what
it would take, that it refuses what cannot work, and the here-side of a run: a tiny notebook executed by
``run`` (with the wheels taken as installed), packed, then unpacked and rendered by ``collect``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "device_kit.py"
spec = importlib.util.spec_from_file_location("device_kit", SCRIPT)
device_kit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(device_kit)


def test_the_kit_carries_keras_and_the_kernel_and_nothing_the_machine_has():
    wanted = device_kit.needed_distributions()
    assert {"keras", "namex", "optree", "ipykernel", "jupyter-client", "pyzmq", "nbclient", "nbformat",
            "traitlets"} <= set(wanted)
    assert not set(wanted) & device_kit.DEVICE_HAS            # numpy, jax, matplotlib, ... are there already
    assert "debugpy" not in wanted and "tensorflow" not in wanted
    assert wanted["keras"] == __import__("keras").__version__  # the versions this environment runs


def test_a_missing_distribution_says_how_to_make_the_environment():
    with pytest.raises(SystemExit, match="course.py setup"):
        device_kit.needed_distributions(roots=("no-such-distribution-cab420",))


def test_each_notebook_takes_the_data_it_loads():
    notebooks = device_kit.notebooks_matching(["01", "03", "08", "09"])
    assert [p.name[:2] for p in notebooks] == ["01", "03", "08", "09"]
    files = device_kit.data_files(notebooks)
    assert files == list(device_kit.FASHION) + list(device_kit.OMNIGLOT)       # each once
    assert device_kit.data_files(device_kit.notebooks_matching(["08"])) == list(device_kit.OMNIGLOT)
    with pytest.raises(SystemExit, match="no notebook"):
        device_kit.notebooks_matching(["no-such-notebook"])


def test_prepare_refuses_a_data_folder_without_the_files(tmp_path):
    with pytest.raises(SystemExit, match="images_background.npz"):
        device_kit.main(["prepare", "--only", "08", "--data", str(tmp_path)])


def test_run_refuses_a_kit_without_wheels(tmp_path):
    with pytest.raises(SystemExit, match="prepare here first"):
        device_kit.main(["run", "--kit", str(tmp_path), "--site", str(tmp_path / "site")])


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A kit whose wheels count as installed, and a notebook that writes a result as the course's do."""
    monkeypatch.setattr(sys, "path", list(sys.path))                  # run() puts the site and the course first
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    kit, site, notebooks = tmp_path / "kit", tmp_path / "site", tmp_path / "notebooks"
    (kit / "wheels").mkdir(parents=True)
    (kit / "wheels" / "placeholder-0-py3-none-any.whl").write_text("")
    (kit / "datasets").mkdir()
    site.mkdir()
    (site / ".installed").write_text("placeholder")
    notebooks.mkdir()
    code = ("import json, os, pathlib\n"
            "out = pathlib.Path(os.environ['CAB420_BUILD']) / 'results'\n"
            "out.mkdir(parents=True, exist_ok=True)\n"
            "record = {'notebook': '01-tiny', 'title': 'Tiny', 'profile': os.environ['CAB420_PROFILE'],\n"
            "          'device': 'GPU x1 (NVIDIA H200)', 'seconds': 1.0, 'metrics': {'ROC AUC': 0.9},\n"
            "          'versions': {'backend': os.environ['KERAS_BACKEND']}}\n"
            "(out / '01-tiny.json').write_text(json.dumps(record))\n"
            "print(os.environ['KERAS_BACKEND'], os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])\n"
            "print('cap', os.environ.get('CAB420_ARC_SECONDS'))")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Tiny"),
                                                   nbformat.v4.new_code_cell(code)]), notebooks / "01-tiny.ipynb")
    return tmp_path


def run_args(kit) -> list[str]:
    """``run``'s arguments for the tiny kit: its wheels, site, notebooks, and where to build and pack."""
    return ["--kit", str(kit / "kit"), "--site", str(kit / "site"), "--notebooks", str(kit / "notebooks"),
            "--build", str(kit / "build"), "--out", str(kit / "out")]


def test_run_executes_on_jax_packs_and_collect_renders(kit, capsys):
    args = run_args(kit)
    assert device_kit.main(["run", "--deadline", "300", *args]) == 0
    with tarfile.open(kit / "out" / "device-run.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"executed/01-tiny.ipynb", "results/01-tiny.json", "summary.json"} <= names
    summary = json.loads((kit / "build" / "summary.json").read_text())
    assert summary["profile"] == "full" and summary["notebooks"][0]["ok"] is True
    assert summary["device"]["keras"] and summary["device"]["jax"]
    executed = nbformat.read(kit / "build" / "executed" / "01-tiny.ipynb", as_version=4)
    printed = executed.cells[1].outputs[0]["text"].strip().splitlines()
    assert printed == ["jax false", "cap None"]    # the kernel ran on Keras' JAX backend; no time cap unless asked

    capsys.readouterr()
    assert device_kit.main(["collect", str(kit / "out" / "device-run.tar.gz"), "--build", str(kit / "back")]) == 0
    table = capsys.readouterr().out
    assert "| 01-tiny | ok |" in table and "ROC AUC 0.9" in table
    assert (kit / "back" / "site" / "index.html").is_file() and (kit / "back" / "site" / "01-tiny.html").is_file()


def test_run_hands_its_time_cap_to_the_notebooks(kit):
    assert device_kit.main(["run", "--deadline", "300", "--arc-seconds", "140", *run_args(kit)]) == 0
    executed = nbformat.read(kit / "build" / "executed" / "01-tiny.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip().splitlines()[-1] == "cap 140"
    assert json.loads((kit / "build" / "summary.json").read_text())["arc_seconds"] == 140


@pytest.mark.parametrize("bad", ["0", "-5", "soon", "inf"])
def test_run_refuses_a_time_cap_that_is_not_a_positive_number(kit, bad, capsys):
    with pytest.raises(SystemExit):
        device_kit.main(["run", "--arc-seconds", bad, *run_args(kit)])
    assert "a number of seconds above 0" in capsys.readouterr().err


def test_run_past_its_deadline_starts_nothing_and_says_so(kit):
    args = run_args(kit)
    assert device_kit.main(["run", "--deadline", "10", *args]) == 1
    summary = json.loads((kit / "build" / "summary.json").read_text())
    assert summary["notebooks"] == [{"notebook": "01-tiny", "ok": None, "error": "not started: deadline"}]
    assert (kit / "out" / "device-run.tar.gz").is_file()      # what there is still comes back


def test_run_where_keras_does_not_start_spends_no_time_on_notebooks(kit, monkeypatch):
    monkeypatch.setattr(device_kit, "device_facts", lambda: {"python": "3.12", "probe error": "ImportError: jax"})
    args = run_args(kit)
    assert device_kit.main(["run", "--deadline", "300", *args]) == 1
    summary = json.loads((kit / "build" / "summary.json").read_text())
    assert summary["notebooks"][0]["ok"] is None and "failed to start" in summary["notebooks"][0]["error"]
    assert not (kit / "build" / "executed").exists()


def test_a_course_notebook_rehearses_its_full_profile_on_jax_through_the_kit(kit, capsys):
    """What the GPU machine would run, end to end on this CPU: notebook 01's full profile, rehearsed (budgets
    cut), on Keras' JAX backend, with the data where the kit puts it."""
    pytest.importorskip("jax")
    data = Path(os.environ.get("CAB420_DATA", ""))
    if not (data / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CAB420_REQUIRE_DATA") == "1":
            pytest.fail("CAB420_REQUIRE_DATA=1 but Fashion-MNIST is missing")
        pytest.skip("Fashion-MNIST not available")
    (kit / "kit" / "datasets" / "fashion-mnist").symlink_to(data / "fashion-mnist", target_is_directory=True)
    args = ["--kit", str(kit / "kit"), "--site", str(kit / "site"), "--only", "01", "--rehearse",
            "--build", str(kit / "build"), "--out", str(kit / "out")]
    assert device_kit.main(["run", "--deadline", "600", *args]) == 0, capsys.readouterr().out[-3000:]
    record = json.loads((kit / "build" / "results" / "01-siamese-bce.json").read_text())
    assert record["versions"]["backend"] == "jax" and "jax" in record["versions"]
    assert record["profile"] == "full" and record["rehearsal"] is True
    assert 0.5 < record["metrics"]["ROC AUC"] <= 1.0
