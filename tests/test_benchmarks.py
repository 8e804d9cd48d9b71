"""benchmarks/run.py: the notebook-time table from recorded results, and the peak-memory
measurement (on a tiny notebook here; the course's own take minutes each)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
spec = importlib.util.spec_from_file_location("benchmarks_run", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_notebook_times_come_from_fast_profile_records(tmp_path, capsys):
    course, tests = tmp_path / "build" / "results", tmp_path / "build" / "test" / "results"
    course.mkdir(parents=True), tests.mkdir(parents=True)
    (course / "01-a.json").write_text(json.dumps({"profile": "fast", "seconds": 251.3, "device": "CPU (2 cores)"}))
    (course / "02-b.json").write_text(json.dumps({"profile": "full", "seconds": 99.0}))  # not the fast profile
    (tests / "03-c.json").write_text(json.dumps({"profile": "fast", "seconds": 61}))     # from the test job
    (course / "04-d.json").write_text(json.dumps({"profile": "fast"}))                   # no seconds
    (course / "05-e.json").write_text("{not json")
    stems = ["01-a", "02-b", "03-c", "04-d", "05-e", "06-f"]
    runs = bench.recorded_runs(stems, [course, tests])
    assert runs["01-a"]["seconds"] == 251.3 and runs["03-c"]["seconds"] == 61
    assert [s for s in stems if runs[s] is None] == ["02-b", "04-d", "05-e", "06-f"]

    bench.notebook_table(stems, runs)
    out = capsys.readouterr().out.splitlines()
    assert "4 min 11 s (251 s)" in out[1] and "CPU (2 cores)" in out[1]
    assert "1 min 01 s (61 s)" in out[3]
    assert all(line.split()[1:] == ["not", "measured"] for line in (out[2], out[4], out[5], out[6]))
    assert out[-1] == "2 of 6 notebook(s) measured, 5 min 12 s together (the others not measured)"


def test_peak_memory_of_a_notebook(tmp_path):
    notebook = tmp_path / "allocates.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import numpy as np\nblock = np.ones(256 * 2**20 // 8)  # 256 MiB, touched")]), notebook)
    measured = bench.measure_memory(notebook, timeout=120)
    assert measured["ok"] and measured["notebook"] == "allocates"
    assert 256 < measured["max_rss_mib"] < 1024  # the block, plus an interpreter, but no inherited peak
