"""tools/render_course.py: execute two tiny notebooks (one fails), render the site, re-render it."""
from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "render_course.py"
spec = importlib.util.spec_from_file_location("render_course", SCRIPT)
render_course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_course)

GOOD_CODE = r'''
import json, os, pathlib
os.write(2, ("I0000 a C++ library's start-up " + "log line\n").encode())   # like TensorFlow's, below sys.stderr
print("printed by the notebook")
%matplotlib inline
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
from IPython.display import HTML, display

fig, ax = plt.subplots(figsize=(2, 2))
line, = ax.plot([0, 1], [0, 1])
anim = FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=2)
display(HTML(anim.to_jshtml()))
plt.show()

record = {"notebook": "01-good", "title": "A good <little> notebook", "profile": "fast",
          "device": "CPU (2 cores)", "seconds": 1.5,
          "versions": {"python": "3", "tensorflow": "2", "keras": "3"},
          "metrics": {"ROC AUC": 0.97213, "EER": 0.08, "P@1": None, "Recall@1": 0.5},
          "references": {"ROC AUC": "slides' network: 0.97"},
          "floors": {"ROC AUC": 0.95, "Recall@1": 0.9},
          "headline": {"metric": "ROC AUC", "against": "EER"}, "published": {"ROC AUC": 0.98}}
out = pathlib.Path(os.environ["CAB420_BUILD"]) / "results"
out.mkdir(parents=True, exist_ok=True)
(out / "01-good.json").write_text(json.dumps(record))
'''


def make_notebooks(folder: Path) -> None:
    folder.mkdir(parents=True)
    good = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Good notebook heading\n\nSome text."),
        nbformat.v4.new_code_cell(GOOD_CODE),
    ])
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Failing notebook\n"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom from the test')"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ])
    nbformat.write(good, folder / "01-good.ipynb")
    nbformat.write(bad, folder / "02-bad.ipynb")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)


def relative_targets(html_text: str) -> list[str]:
    parser = Links()
    parser.feed(html_text)
    return [t for t in parser.targets if not urlparse(t).scheme and not t.startswith(("#", "//"))]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    make_notebooks(root / "notebooks")
    build = root / "build"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAB420_BUILD", str(build))
        mp.setenv("CAB420_PROFILE", "fast")
        code = render_course.main(["--notebooks", str(root / "notebooks"), "--build", str(build),
                                   "--timeout", "120"])
    return root, build, code


def check_site(build: Path) -> None:
    site = build / "site"
    good_html = (site / "01-good.html").read_text()
    assert "data:image/png;base64" in good_html
    assert "printed by the notebook" in good_html and "start-up log line" not in good_html
    assert "animation" in good_html and "<script" in good_html  # to_jshtml passes through
    assert "cdnjs" not in good_html and "font-awesome" not in good_html  # offline: no CDN scripts or styles
    assert ".fa-play::before" in good_html  # the animation's button icons, inline
    assert (site / "02-bad.html").is_file()  # the partial run is rendered too
    assert "boom from the test" in (site / "02-bad.html").read_text()

    index = (site / "index.html").read_text()
    assert "Comparing things with deep neural networks — CAB420 metric learning" in index
    assert 'href="01-good.html"' in index and 'href="02-bad.html"' in index
    assert "A good &lt;little&gt; notebook" in index  # title from the results JSON, escaped
    assert "Failing notebook" in index  # title from the first markdown heading
    assert "failed" in index and "cell 3: ValueError: boom from the test" in index
    assert "<table" in index and "ROC AUC" in index and "0.972" in index and "0.950" in index
    assert "slides&#x27; network: 0.97" in index
    assert 'class="below"' in index  # Recall@1 0.5 < floor 0.9
    assert "fast" in index and "CPU (2 cores)" in index
    assert '<img src="results.png"' in index
    headlines = index.split('<table class="headlines">')[1].split("</table>")[0]   # one row: 01's key result
    assert headlines.count("<tr>") == 2 and "ROC AUC" in headlines and "0.972" in headlines
    assert "EER" in headlines and "0.080" in headlines and "0.950" in headlines and "0.980" in headlines
    assert '<img src="headlines.png"' in index
    assert (site / "headlines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in index and "https://" not in index  # self-contained
    for target in relative_targets(index):
        assert (site / unquote(target)).is_file(), target

    with open(site / "results.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Notebook", "Metric", "Value", "Floor (asserted)", "Published / reference figure",
                       "Profile", "Device", "Seconds"]
    assert [r[:2] for r in rows[1:]] == [["01-good", m] for m in ("ROC AUC", "EER", "P@1", "Recall@1")]
    assert rows[1][2:] == ["0.97213", "0.95", "slides' network: 0.97", "fast", "CPU (2 cores)", "1.5"]
    assert rows[3][2] == ""  # a null metric
    records = json.loads((site / "results.json").read_text())
    assert [r["notebook"] for r in records] == ["01-good"]
    assert (site / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_execute_and_render(course, capsys):
    root, build, code = course
    assert code != 0  # one notebook failed
    assert (build / "executed" / "01-good.ipynb").is_file()
    bad = nbformat.read(build / "executed" / "02-bad.ipynb", as_version=4)
    assert bad.cells[1].execution_count == 1  # partially executed copy kept
    assert bad.metadata["cab420"]["ok"] is False
    assert nbformat.read(build / "executed" / "01-good.ipynb", as_version=4).metadata["cab420"]["ok"] is True
    check_site(build)


def test_no_execute_rerenders(course, capsys):
    root, build, _ = course
    shutil.rmtree(build / "site")
    before = {p: p.stat().st_mtime_ns for p in (build / "executed").glob("*.ipynb")}
    code = render_course.main(["--notebooks", str(root / "notebooks"), "--build", str(build), "--no-execute"])
    assert code != 0  # the failed notebook is still failed
    assert {p: p.stat().st_mtime_ns for p in (build / "executed").glob("*.ipynb")} == before  # nothing re-ran
    check_site(build)
    out = capsys.readouterr().out
    assert "01-good" in out and "FAILED" in out

    # --only restricts the work but the index still lists the whole course
    code = render_course.main(["--build", str(build), "--no-execute", "--only", "01-"])
    assert code == 0
    assert "02-bad.html" in (build / "site" / "index.html").read_text()


def test_write_index_without_results(tmp_path):
    runs = [{"stem": "03-x", "title": "X & Y", "ok": None, "seconds": None, "error": None, "html": None}]
    index = render_course.write_index(tmp_path, [], runs).read_text()
    assert "X &amp; Y" in index and "not run" in index and "No results recorded yet." in index
    assert not (tmp_path / "results.png").exists()
    assert (tmp_path / "results.csv").read_text().splitlines() == [",".join(render_course.COLUMNS)]


def test_nothing_to_do_fails(tmp_path):
    assert render_course.main(["--notebooks", str(tmp_path / "none"), "--build", str(tmp_path / "b")]) == 1


def test_check_links_finds_broken_and_network_references(tmp_path):
    (tmp_path / "ok.html").write_text('<a href="#top">top</a><img src="data:image/png;base64,AA==">')
    (tmp_path / "index.html").write_text(
        '<a href="ok.html#x">fine</a> <a href="https://arxiv.org/abs/1412.6622">a paper: fine</a>'
        '<a href="missing.html">broken</a> <img src="sub/plot%20a.png"> <img src="gone.png">'
        '<script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//cdn.example.org/y.css"> <a href="../outside.html">outside</a>')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "plot a.png").write_bytes(b"png")
    (tmp_path.parent / "outside.html").write_text("")
    checked, problems = render_course.check_links(tmp_path)
    assert checked == 8
    assert len(problems) == 5 and all(p.startswith("index.html: ") for p in problems)
    for needle in ("missing.html", "gone.png", "x.js", "y.css", "outside.html"):
        assert sum(needle in p for p in problems) == 1, needle


def test_math_and_notebook_links_render_offline(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# Maths\n\nInline $a^2 + b^2$, display $$\\frac{1}{2}$$, "
        "see [notebook 01](01-siamese-bce.ipynb#pairs) and [a paper](https://arxiv.org/abs/1412.6622).")])
    nbformat.write(nb, tmp_path / "m.ipynb")
    page = render_course.render_html(tmp_path / "m.ipynb", tmp_path / "m.html").read_text()
    assert 'href="01-siamese-bce.html#pairs"' in page and 'href="https://arxiv.org/abs/1412.6622"' in page
    assert "<script src=" not in page and "mathjax" not in page.lower()
    assert (page.count("<math") == 2) == (importlib.util.find_spec("latex2mathml") is not None)

    # without latex2mathml the TeX is shown as text, delimiters and all
    monkeypatch.setitem(__import__("sys").modules, "latex2mathml.converter", None)
    assert render_course.tex_to_html("a < b", display=False) == '<code class="tex">$a &lt; b$</code>'
    assert render_course.tex_to_html("x", display=True) == '<code class="tex">$$x$$</code>'


def test_a_rehearsal_lists_unmet_claims_but_fails_on_other_errors(tmp_path, capsys):
    """--rehearse: a failed assert (a claim a tiny budget cannot meet) is listed and the
    run goes on; any other exception still fails the notebook; the index says 'rehearsal'."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    record = ('import json, os, pathlib\n'
              'out = pathlib.Path(os.environ["CAB420_BUILD"]) / "results"; out.mkdir(parents=True, exist_ok=True)\n'
              '(out / "01-claims.json").write_text(json.dumps({"notebook": "01-claims", "profile": "full", '
              '"rehearsal": os.environ.get("CAB420_REHEARSAL") == "1", "metrics": {"P@1": 0.2}}))')
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Claims"),
        nbformat.v4.new_code_cell(record),
        nbformat.v4.new_code_cell("assert 0.2 > 0.81, 'P@1 below raw pixels'"),
        nbformat.v4.new_code_cell("print('still runs')"),
    ]), notebooks / "01-claims.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell("undefined_name + 1"),
    ]), notebooks / "02-broken.ipynb")
    build = tmp_path / "build"
    code = render_course.main(["--notebooks", str(notebooks), "--build", str(build), "--timeout", "120", "--rehearse"])
    out = capsys.readouterr().out
    assert code != 0                                              # 02's NameError is a real failure
    claims = nbformat.read(build / "executed" / "01-claims.ipynb", as_version=4)
    assert claims.metadata["cab420"]["ok"] is True
    assert claims.metadata["cab420"]["unmet"] == ["cell 3: AssertionError: P@1 below raw pixels"]
    assert claims.cells[3].outputs[0]["text"].strip() == "still runs"
    assert "claim not met at a rehearsal's budget (expected): cell 3: AssertionError: P@1 below raw pixels" in out
    assert "cell 2: NameError" in out
    index = (build / "site" / "index.html").read_text()
    assert "A rehearsal" in index and "full (rehearsal)" in index

    # without --rehearse the same failed assert fails the notebook
    code = render_course.main(["--notebooks", str(notebooks), "--build", str(tmp_path / "real"), "--timeout", "120",
                               "--only", "01-"])
    assert code != 0
    assert nbformat.read(tmp_path / "real" / "executed" / "01-claims.ipynb", as_version=4).metadata["cab420"]["ok"] is False


def test_the_results_say_when_an_arc_training_had_a_time_cap():
    record = {"notebook": "08-arc", "profile": "full", "device": "GPU x1 (NVIDIA H200)", "seconds": 300,
              "metrics": {"Lake 20-way, naive ARC": 0.9, "training steps": 41000}}
    assert {row["profile"] for row in render_course.result_rows([record])} == {"full"}
    capped = render_course.result_rows([dict(record, arc_seconds=140)])
    assert {row["profile"] for row in capped} == {"full (ARC time cap 140 s)"}
    assert render_course.result_rows([dict(record, arc_seconds=None)])[0]["profile"] == "full"


# ---------------------------------------------------------------- the syllabus's time in each profile
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TIMES_HEADER = "notebook,profile,device,seconds,measured,arc_seconds,note\n"


def test_the_course_s_measured_times_cover_every_notebook_and_no_other():
    """docs/notebook_times.csv, which the syllabus reads: every course notebook has its fast-profile
    time, and every row names a notebook that exists (a renamed notebook would lose its times)."""
    times = render_course.measured_times()
    stems = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert len(stems) == 9
    assert set(times) == stems
    assert all("fast" in by_profile for by_profile in times.values())
    assert all(row["device"] and row["measured"] for by_profile in times.values() for row in by_profile.values())


def test_measured_times_read_and_shown(tmp_path):
    table = tmp_path / "times.csv"
    table.write_text(TIMES_HEADER + "01-a,fast,2-core CPU,44,2026-12-01,,x\n01-a,full,NVIDIA H100,3725,,,y\n"
                     "02-b,fast,2-core CPU,61.5,2026-12-01,,\n02-b,full,2-core CPU,3855,2026-12-06,4200,z\n")
    times = render_course.measured_times(table)
    assert times["01-a"]["full"]["seconds"] == 3725.0 and times["02-b"]["fast"]["note"] == ""
    assert times["01-a"]["full"]["arc_seconds"] is None and times["02-b"]["full"]["arc_seconds"] == 4200.0
    assert render_course.profile_times_line(times["01-a"]) == \
        "fast 0m 44s (2-core CPU, 2026-12-01) · full 1h 02m 05s (NVIDIA H100)"
    # a time set by a time cap on the ARC's training, not by the profile's budget, says so
    assert render_course.profile_times_line(times["02-b"]) == \
        "fast 1m 02s (2-core CPU, 2026-12-01) · full 1h 04m 15s (2-core CPU, 2026-12-06; ARC time cap 4200 s)"
    assert render_course.profile_times_line({"fast": times["02-b"]["fast"]}) == \
        "fast 1m 02s (2-core CPU, 2026-12-01) · full: not measured"
    assert render_course.measured_times(tmp_path / "absent.csv") == {}   # no table: this run's times only

    runs = [{"stem": "01-a", "title": "A", "ok": True, "seconds": 50, "error": None, "html": None},
            {"stem": "02-b", "title": "02 · B from its heading", "ok": None, "seconds": None, "error": None,
             "html": None},
            {"stem": "03-c", "title": "C", "ok": None, "seconds": None, "error": None, "html": None}]
    index = render_course.write_index(tmp_path / "site", [], runs, times).read_text()
    syllabus = index.split('<ol class="syllabus">')[1].split("</ol>")[0]
    items = syllabus.split("<li>")[1:]
    assert "measured: fast 0m 44s (2-core CPU, 2026-12-01) · full 1h 02m 05s (NVIDIA H100)" in items[0]
    assert "ARC time cap 4200 s" in items[1]
    assert "measured:" not in items[2]   # a notebook the table does not know
    assert "02. B from its heading" in items[1] and "02. 02" not in items[1]   # the number once
    assert "1 of 3 notebook(s) run, 0 failed" in index
    assert "its time in each profile" in index
    plain = render_course.write_index(tmp_path / "plain", [], runs).read_text()
    assert "measured:" not in plain and "its time in each profile" not in plain


@pytest.mark.parametrize("rows, complaint", [
    ("notebook,profile,device,seconds\n01-a,fast,CPU,4\n", "measured, arc_seconds, note missing"),
    (TIMES_HEADER + "01-a,quick,CPU,4,,,\n", "profile 'quick' is not one of fast, full"),
    (TIMES_HEADER + "01-a,fast,CPU,four,,,\n", "seconds 'four' is not a number"),
    (TIMES_HEADER + "01-a,fast,CPU,0,,,\n", "seconds must be above 0 and finite, not 0"),
    (TIMES_HEADER + "01-a,fast,CPU,inf,,,\n", "seconds must be above 0 and finite, not inf"),
    (TIMES_HEADER + "01-a,fast,,4,,,\n", "names its notebook and the device"),
    (TIMES_HEADER + "01-a,fast,CPU,4,,,\n01-a,fast,CPU,5,,,\n", "line 3: a second fast time for 01-a"),
    (TIMES_HEADER + "01-a,full,CPU,4,,-140,\n", "arc_seconds (the ARC's time cap) must be a number of seconds above 0"),
    (TIMES_HEADER + "01-a,full,CPU,4,,140s,\n", "or empty for none; not '140s'"),
])
def test_a_malformed_times_table_says_where_and_what(tmp_path, rows, complaint):
    table = tmp_path / "times.csv"
    table.write_text(rows)
    with pytest.raises(ValueError, match="times.csv") as caught:
        render_course.measured_times(table)
    assert complaint in str(caught.value)


def test_a_failure_is_named_by_the_cell_s_own_error_whatever_nbclient_raised():
    """Interrupting a run leaves a KeyboardInterrupt in the cell while nbclient raises an
    AssertionError of its own: the summary names what the student would see in the cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("train()")])
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]
    assert render_course._error_line(AssertionError(), nb, 1) == "cell 2: KeyboardInterrupt:"
    assert render_course._error_line(TimeoutError("Cell timed out\nmore"), nb, 0) == "cell 1: TimeoutError: Cell timed out"


@pytest.mark.parametrize("environ, limit", [
    ({"CAB420_PROFILE": "fast"}, 1800),
    ({"CAB420_PROFILE": "full"}, 24 * 3600),
    ({}, 24 * 3600),                                                      # auto: full on a GPU
    ({"CAB420_PROFILE": "full", "CAB420_REHEARSAL": "1"}, 1800),          # a rehearsal's budgets are tiny
    ({"CAB420_PROFILE": "full", "CAB420_REHEARSAL": " Yes "}, 1800),      # read as the notebooks read it
    ({"CAB420_PROFILE": "full", "CAB420_REHEARSAL": "maybe"}, 24 * 3600), # the notebook says what is wrong
    ({"CAB420_PROFILE": "fast", "CAB420_ARC_SECONDS": "4200"}, 6000),     # the capped training is one cell
    ({"CAB420_PROFILE": "full", "CAB420_ARC_SECONDS": "140"}, 24 * 3600),
    ({"CAB420_PROFILE": "fast", "CAB420_ARC_SECONDS": "soon"}, 1800),     # the notebook says what is wrong
])
def test_the_default_cell_limit_leaves_room_for_the_profile_and_the_arc_s_cap(environ, limit):
    assert render_course.default_cell_timeout(environ) == limit


def test_a_cell_past_its_time_limit_is_named_as_such_not_by_the_interrupt_it_leaves(tmp_path):
    """A cell stopped by the per-cell limit used to read 'KeyboardInterrupt:' (the kernel's
    shutdown interrupted it): the summary now says it ran out of time, and how to give it more."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(60)")])
    source = tmp_path / "slow.ipynb"
    nbformat.write(nb, source)
    ok, seconds, error = render_course.execute_notebook(source, tmp_path / "executed" / "slow.ipynb", timeout=3)
    assert not ok and seconds < 50
    assert error.startswith("cell 2: stopped: still running after the per-cell time limit of 3 s")
    assert "--timeout" in error and "KeyboardInterrupt" not in error


def _readme_duration(seconds: float) -> str:
    """A time as README's profile table writes it: ``44 s``, ``6 min 52 s``, ``1 h 12 min 05 s``."""
    s = int(round(seconds))
    hours, minutes, s = s // 3600, s // 60 % 60, s % 60
    if hours:
        return f"{hours} h {minutes:02d} min {s:02d} s"
    return f"{minutes} min {s:02d} s" if minutes else f"{s} s"


def test_readme_s_profile_table_gives_the_measured_times_the_syllabus_shows():
    """README's profile table and docs/notebook_times.csv are kept by hand, side by side: each time in the
    table is the one the syllabus shows, in the column of its profile (a run that updates one and not the
    other fails here)."""
    assert _readme_duration(44) == "44 s" and _readme_duration(776) == "12 min 56 s"
    assert _readme_duration(4325) == "1 h 12 min 05 s"
    readme = (NOTEBOOKS.parent / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| 0") and len(cells) == 3 and cells[0][:2].isdigit():
            rows[cells[0][:2]] = {"fast": cells[1], "full": cells[2]}
    times = render_course.measured_times()
    assert sorted(rows) == sorted(stem[:2] for stem in times)
    for stem, by_profile in times.items():
        for profile, row in by_profile.items():
            cell = rows[stem[:2]][profile]
            written = _readme_duration(row["seconds"])   # whole, not the tail of "3 min 44 s" or "1 h 06 min ..."
            assert re.search(rf"(?<![\d])(?<!min )(?<!h ){re.escape(written)}", cell), (
                f"{stem}'s {profile} time in docs/notebook_times.csv, {written}, "
                f"is not in README's profile table: {cell[:120]}")
            if row["arc_seconds"]:   # a time set by a cap, not by the budget, says so there too
                assert f"time cap of {row['arc_seconds']:g} s" in cell, (
                    f"{stem}'s {profile} time had an ARC time cap of {row['arc_seconds']:g} s; "
                    f"README's profile table does not say so: {cell[:120]}")
