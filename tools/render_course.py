"""Run the course notebooks and render them, with their results, as a small static site.

    python tools/render_course.py [--notebooks notebooks] [--build build]
                                  [--only PATTERN ...] [--timeout SECONDS] [--no-execute] [--rehearse]

(``--timeout``: each cell's time limit; by default 30 min in the fast profile, 24 h where
the full profile may run, and never less than ``$CAB420_ARC_SECONDS`` + 30 min.)

For each notebook (sorted; only those whose name contains one of the ``--only``
patterns, if given):

1. execute it with nbclient (kernel ``python3``, cwd = the notebook's folder,
   the environment inherited, so ``CAB420_PROFILE`` passes through, and
   ``CAB420_BUILD`` set to ``--build`` so results land where this script reads
   them) and save the executed copy, even a partial one, to
   ``build/executed/<stem>.ipynb``;
2. render that copy to ``build/site/<stem>.html`` (images embedded).

Then write ``build/site/index.html`` (syllabus, with each notebook's measured time in
each profile from ``docs/notebook_times.csv``; the headlines — each notebook's key
result against what it is compared with, as a table and ``headlines.png``; every
metric as a table and ``results.png``), ``results.csv`` and ``results.json`` from
``build/results/*.json``, check that every link and image in the site resolves,
take a screenshot of the index with headless Chromium when one is installed
(``build/site/screenshots/index.png``), print a summary, and exit non-zero if a
notebook failed or a link is broken.  ``--no-execute`` skips step 1 and
re-renders what ``build/`` holds.

``--rehearse`` is for a rehearsal (``CAB420_REHEARSAL=1``, usually with
``CAB420_PROFILE=full``: ``python3 tools/course.py rehearse``): the budgets are
too small for the notebooks' claims, so a cell whose ``assert`` fails is listed
("claims not met at a rehearsal's budgets") and execution goes on; any other
error still fails the notebook.  The index says the numbers are a rehearsal's.

The pages work offline: nbconvert's lab template is used without its CDN
scripts (require.js, MathJax, mermaid, widgets), LaTeX in markdown becomes
MathML (which browsers draw natively) when ``latex2mathml`` is installed and
stays as readable TeX otherwise, and matplotlib animations get their button
icons from inline CSS instead of Font Awesome's CDN.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import nbformat

PAGE_TITLE = "Comparing things with deep neural networks — CAB420 metric learning"
# Each notebook's measured wall time in each profile, kept by hand as runs are measured (README: Profiles);
# the syllabus shows it beside this run's own time, so a lecturer can plan a session from the index.
MEASURED_TIMES = Path(__file__).resolve().parents[1] / "docs" / "notebook_times.csv"
TIME_FIELDS = ("notebook", "profile", "device", "seconds", "measured", "arc_seconds", "note")
PROFILES = ("fast", "full")
COLUMNS = ["Notebook", "Metric", "Value", "Floor (asserted)", "Published / reference figure",
           "Profile", "Device", "Seconds"]
RUN_KEY = "cab420"  # executed copies keep {ok, seconds, error, executed_at, unmet} under metadata[RUN_KEY]
REHEARSAL_ALLOWED = ("AssertionError",)  # what a rehearsal lets pass: a claim its tiny budget cannot meet


# --------------------------------------------------------------------------- execute
FAST_CELL_TIMEOUT = 1800        # s: no fast-profile cell takes more than minutes; one past this has hung
FULL_CELL_TIMEOUT = 24 * 3600   # s: the full profile's ARC trainings take hours where the card is slow


def default_cell_timeout(environ=None) -> int:
    """The per-cell time limit when ``--timeout`` is not given, from the environment the
    notebooks will run in: 30 min for the fast profile and a rehearsal (its budgets are
    tiny), 24 h where the full profile may run (``CAB420_PROFILE=full``, or ``auto``,
    which is full on a GPU), and never less than a time cap on the ARC's training
    (``CAB420_ARC_SECONDS``) plus 30 min, since the capped training runs in one cell."""
    from cab420utils._validate import finite_positive
    from cab420utils.profiles import ARC_SECONDS_VARIABLE, PROFILE_VARIABLE, rehearsal_requested

    environ = os.environ if environ is None else environ
    profile = (environ.get(PROFILE_VARIABLE) or "auto").strip().lower()
    try:
        rehearsal = rehearsal_requested(environ)
    except ValueError:      # malformed: the notebook's own check says what is wrong with it
        rehearsal = False
    limit = FAST_CELL_TIMEOUT if profile == "fast" or rehearsal else FULL_CELL_TIMEOUT
    cap = finite_positive(environ.get(ARC_SECONDS_VARIABLE))   # None when unset or malformed: the notebook's
    if cap is not None:                                         # own check says what is wrong with it
        limit = max(limit, int(cap) + FAST_CELL_TIMEOUT)
    return limit


def _error_line(exc: BaseException, nb, cell_index: int | None, timeout: int | None = None) -> str:
    """'cell N: Name: message': a failed cell's exception (its traceback's last line, from
    the error output), or the first line of any other failure (dead kernel); a cell that
    ran past the per-cell limit ``timeout`` is named as such, with how to raise it."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    if isinstance(exc, CellTimeoutError):
        # the kernel is stopped after the timeout, which can leave a KeyboardInterrupt in the cell:
        # that is not what happened, so say what did
        limit = f"the per-cell time limit of {timeout} s" if timeout else "the per-cell time limit"
        where = f"cell {cell_index + 1}: " if cell_index is not None else ""
        return (f"{where}stopped: still running after {limit} (give it more with "
                f"`tools/render_course.py --timeout SECONDS`)")
    last = None
    # the cell's own error output first, whatever nbclient raised (an interrupted kernel shows its
    # KeyboardInterrupt there, while nbclient raises an AssertionError of its own)
    if cell_index is not None and cell_index < len(nb.cells):
        for output in nb.cells[cell_index].get("outputs", []):
            if output.get("output_type") == "error":
                last = f"{output.get('ename', '')}: {output.get('evalue', '')}"
    if last is None and isinstance(exc, CellExecutionError) and getattr(exc, "ename", None):
        last = f"{exc.ename}: {exc.evalue}"
    if last is None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        last = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    last = " ".join(last.split())
    if len(last) > 300:
        last = last[:297] + "..."
    return f"cell {cell_index + 1}: {last}" if cell_index is not None else last


def execute_notebook(path, out_path, timeout=1800, env=None, allow_error_names=()):
    """Execute ``path`` in its own folder; save the executed copy to ``out_path``.

    Returns ``(ok, seconds, error)``; ``error`` is ``'cell N: Name: message'`` or None.
    A failing notebook is saved as far as it ran.  ``env`` (default: this
    process's environment) is the kernel's environment.  Exceptions named in
    ``allow_error_names`` do not stop the run; the cells that raised them are
    kept, as ``'cell N: Name: message'`` lines, in the copy's ``metadata[RUN_KEY]["unmet"]``.
    """
    from nbclient import NotebookClient

    path, out_path = Path(path), Path(out_path)
    nb = nbformat.read(path, as_version=4)
    current = {"index": None}

    def on_cell_execute(cell, cell_index):
        current["index"] = cell_index

    # capture_fd_output=False: what C++ libraries write straight to the process's stderr (TensorFlow's
    # start-up log lines: "oneDNN custom operations are on", "failed call to cuInit") goes to this
    # script's terminal, not into the rendered pages; Python's own warnings and prints still do.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}},
                            on_cell_execute=on_cell_execute, allow_error_names=list(allow_error_names),
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=dict(os.environ if env is None else env))
    except Exception as exc:  # a failed cell, a timeout, a dead kernel: record it and go on
        error = _error_line(exc, nb, current["index"], timeout)
    seconds = time.perf_counter() - started
    unmet = [f"cell {i + 1}: {o.get('ename')}: {' '.join(str(o.get('evalue', '')).split())[:300]}"
             for i, cell in enumerate(nb.cells) for o in cell.get("outputs", [])
             if o.get("output_type") == "error" and o.get("ename") in allow_error_names]
    nb.metadata[RUN_KEY] = {"ok": error is None, "seconds": round(seconds, 1), "error": error, "unmet": unmet,
                            "executed_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return error is None, seconds, error


# --------------------------------------------------------------------------- render
# nbconvert's lab template, less everything it would fetch from a CDN: the pages
# must render offline (a lecture room, a train, CI) and load nothing from elsewhere.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">{{ resources.cab420_css }}</style>{%- endblock extra_css -%}
"""
OFFLINE_TEMPLATE_NAME = "cab420-offline.html.j2"

# matplotlib's to_jshtml() links Font Awesome from a CDN for its buttons' icons;
# these text glyphs stand in for the ones it uses, so the controls show offline.
PAGE_CSS = """
.fa{font-style:normal;font-family:"DejaVu Sans",system-ui,sans-serif}
.fa-minus::before{content:"\\2212"} .fa-plus::before{content:"+"}
.fa-fast-backward::before{content:"|\\25C0\\25C0"} .fa-step-backward::before{content:"|\\25C0"}
.fa-play::before{content:"\\25B6"} .fa-flip-horizontal{display:inline-block;transform:scaleX(-1)}
.fa-pause::before{content:"\\275A\\275A"} .fa-step-forward::before{content:"\\25B6|"}
.fa-fast-forward::before{content:"\\25B6\\25B6|"}
math[display="block"]{margin:.6em 0;font-size:1.15em}
code.tex{white-space:pre-wrap}
"""
FONT_AWESOME_LINK = re.compile(r"""<link\b[^>]*\bhref=["']https?://[^"']*font-awesome[^"']*["'][^>]*>""", re.IGNORECASE)


def tex_to_html(tex: str, display: bool) -> str:
    """LaTeX as MathML (via ``latex2mathml``, when installed); else the escaped TeX
    between its delimiters, which still reads well."""
    try:
        from latex2mathml.converter import convert

        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # not installed, or TeX it does not know: show the source
        delimiters = ("$$", "$$") if display else ("$", "$")
        return f'<code class="tex">{html.escape(delimiters[0] + tex + delimiters[1])}</code>'


def _offline_exporter():
    """An ``HTMLExporter`` for self-contained pages (see OFFLINE_TEMPLATE and tex_to_html)."""
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class OfflineRenderer(IPythonRenderer):
        def block_math(self, body):
            return tex_to_html(body, display=True)

        def inline_math(self, body):
            return tex_to_html(body, display=False)

        def latex_environment(self, name, body):
            return tex_to_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

        def link(self, text, url, title=None):
            # a lecture links another as 'NN-name.ipynb'; in the site that page is 'NN-name.html'
            parts = urlsplit(url)
            if not parts.scheme and not parts.netloc and parts.path.endswith(".ipynb"):
                url = parts._replace(path=parts.path[:-len(".ipynb")] + ".html").geturl()
            return super().link(text, url, title)

    class OfflineHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = OfflineRenderer(
                escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    return OfflineHTMLExporter(template_name="lab", template_file=OFFLINE_TEMPLATE_NAME, embed_images=True,
                               extra_loaders=[DictLoader({OFFLINE_TEMPLATE_NAME: OFFLINE_TEMPLATE})])


def render_html(executed_path, html_path, source_dir=None):
    """Render an executed notebook to a standalone, offline HTML page (outputs' images
    are data URIs; markdown images under ``source_dir`` are embedded too; HTML outputs
    such as matplotlib's ``to_jshtml`` animations pass through, less their CDN link)."""
    executed_path, html_path = Path(executed_path), Path(html_path)
    nb = nbformat.read(executed_path, as_version=4)
    source_dir = Path(source_dir) if source_dir else executed_path.parent
    body, _ = _offline_exporter().from_notebook_node(
        nb, resources={"metadata": {"name": executed_path.stem, "path": str(source_dir)}, "cab420_css": PAGE_CSS})
    body = FONT_AWESOME_LINK.sub("", body)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path


# --------------------------------------------------------------------------- check
class _References(HTMLParser):
    """Every href/src in a page, with the tag (and rel) it sits on."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []  # (tag, attribute, value, rel)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name):
                self.found.append((tag, name, attrs[name].strip(), (attrs.get("rel") or "").lower()))


def page_references(html_text: str) -> list[tuple[str, str, str, str]]:
    """``(tag, attribute, value, rel)`` for every href/src in ``html_text``."""
    parser = _References()
    parser.feed(html_text)
    return parser.found


def check_links(site_dir) -> tuple[int, list[str]]:
    """Check every page of the site: each relative href/src must name a file in it, and
    nothing the page loads (scripts, images, stylesheets, frames) may come from the
    network.  Links the reader follows to other sites are fine.

    Returns ``(number of references checked, problems)``; each problem names the page.
    """
    site_dir = Path(site_dir).resolve()
    checked, problems = 0, []
    for page in sorted(site_dir.rglob("*.html")):
        for tag, attribute, value, rel in page_references(page.read_text(encoding="utf-8", errors="replace")):
            parts = urlsplit(value)
            if parts.scheme in ("data", "mailto", "javascript") or value.startswith("#"):
                continue
            checked += 1
            name = page.relative_to(site_dir).as_posix()
            loads = tag != "a" and not (tag == "link" and "stylesheet" not in rel and "icon" not in rel)
            if parts.scheme or value.startswith("//"):
                if loads:
                    problems.append(f"{name}: <{tag} {attribute}={value!r}> needs the network")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file() or not target.is_relative_to(site_dir):
                problems.append(f"{name}: <{tag} {attribute}={value!r}> -> no such file in the site")
    return checked, problems


# --------------------------------------------------------------------------- browser
BROWSER_VARIABLE = "CAB420_CHROMIUM"  # tools/course.py sets it to the Chromium it found or installed
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and quiet on a closed network: no sandbox (root), no GPU, and none of the
# background connections (updates, sync, QUIC) that would otherwise be attempted at start.
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """``$CAB420_CHROMIUM`` if it names a program, else the first Chromium/Chrome on PATH."""
    given = os.environ.get(BROWSER_VARIABLE)
    if given and shutil.which(given):
        return shutil.which(given)
    return next((shutil.which(name) for name in BROWSER_NAMES if shutil.which(name)), None)


def run_chromium(page, *flags, browser=None, timeout=60, budget_ms=5000) -> subprocess.CompletedProcess:
    """Open ``page`` (a file) in headless Chromium with ``flags`` (e.g. ``--dump-dom``), in a
    fresh profile; its scripts get ``budget_ms`` of virtual time, the whole run ``timeout`` s."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found: install Debian's 'chromium' or set {BROWSER_VARIABLE}")
    profile = tempfile.mkdtemp(prefix="cab420-chromium-")
    command = [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
               *flags, Path(page).resolve().as_uri()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group: a timeout ends all its helpers
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended meanwhile
            pass
        process.communicate()
        raise
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def screenshot(page, png_path, size=(1280, 1600), browser=None, timeout=60) -> Path:
    """A PNG of ``page`` as headless Chromium draws it, ``size`` = (width, height) pixels."""
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    done = run_chromium(page, f"--screenshot={png_path}", f"--window-size={size[0]},{size[1]}",
                        browser=browser, timeout=timeout)
    if not png_path.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"Chromium wrote no screenshot of {page} (exit {done.returncode}):\n{tail}")
    return png_path


def dump_dom(page, browser=None, timeout=60) -> str:
    """The page's DOM, serialised after it loaded and its scripts ran."""
    done = run_chromium(page, "--dump-dom", browser=browser, timeout=timeout)
    if done.returncode != 0 or not done.stdout.strip():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"Chromium could not load {page} (exit {done.returncode}):\n{tail}")
    return done.stdout


# --------------------------------------------------------------------------- results
def load_results(results_dir) -> list[dict]:
    """Every ``results_dir/*.json`` record, sorted by file name (unreadable files are reported and skipped)."""
    records = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"warning: skipping {path}: {exc}", file=sys.stderr)
            continue
        if not isinstance(record, dict):
            print(f"warning: skipping {path}: not a JSON object", file=sys.stderr)
            continue
        record.setdefault("notebook", path.stem)
        records.append(record)
    return records


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _fmt(value, digits=3) -> str:
    if value is None:
        return ""
    number = _number(value)
    if number is None or isinstance(value, str):
        return str(value)
    return f"{number:.{digits}f}"


def _profile_label(record) -> str | None:
    """The record's profile, marked when its numbers are a rehearsal's or its ARC training had a time cap."""
    profile = record.get("profile")
    if record.get("rehearsal"):
        return f"{profile} (rehearsal)"
    cap = _number(record.get("arc_seconds"))
    return f"{profile} (ARC time cap {cap:g} s)" if cap else profile


def result_rows(records) -> list[dict]:
    """One row per (notebook, metric): raw values plus whether the value is below its floor."""
    rows = []
    for record in records:
        floors, references = record.get("floors") or {}, record.get("references") or {}
        for metric, value in (record.get("metrics") or {}).items():
            floor = floors.get(metric)
            value_n, floor_n = _number(value), _number(floor)
            rows.append({
                "notebook": str(record.get("notebook", "")), "metric": str(metric), "value": value,
                "floor": floor, "reference": references.get(metric), "profile": _profile_label(record),
                "device": record.get("device"), "seconds": record.get("seconds"),
                "below": value_n is not None and floor_n is not None and value_n < floor_n,
                "missing": value_n is None and floor_n is not None,
            })
    return rows


def _save_figure(fig, png_path) -> Path:
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    return png_path


HEADLINE_COLUMNS = ["Notebook", "Key result", "Value", "Compared with", "Its value", "Floor (asserted)",
                    "Published (same task) / reference figure", "Profile", "Device", "Seconds"]


def headline_rows(records) -> list[dict]:
    """One row per notebook that named a headline: its key metric and value, what it is compared
    with and that value, the key metric's floor and same-task published figure, and the run's facts."""
    rows = []
    for record in records:
        headline, metrics = record.get("headline") or {}, record.get("metrics") or {}
        if not headline.get("metric"):
            continue
        key, against = headline["metric"], headline.get("against")
        rows.append({
            "notebook": str(record.get("notebook", "")), "metric": key, "value": metrics.get(key),
            "against": against, "against_value": metrics.get(against) if against else None,
            "floor": (record.get("floors") or {}).get(key), "published": (record.get("published") or {}).get(key),
            "reference": (record.get("references") or {}).get(key),
            "profile": _profile_label(record),
            "device": record.get("device"), "seconds": record.get("seconds"),
        })
    return rows


def write_headlines_figure(rows, png_path) -> Path | None:
    """Per notebook, its key result (blue) beside what it is compared with (grey), its floor as a black
    tick and a same-task published figure as a red diamond; None if there is nothing to plot."""
    rows = [row for row in rows if _number(row["value"]) is not None]
    if not rows:
        return None
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global backend state

    fig = Figure(figsize=(9, 1.2 + 0.62 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    height = 0.36
    for y, row in zip(ys, rows):
        value, other = _number(row["value"]), _number(row["against_value"])
        ax.barh(y + height / 2, value, height, color="#2e86c1")
        ax.annotate(f"{value:.3f}  {row['metric']}", (value, y + height / 2), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
        if other is not None:
            ax.barh(y - height / 2, other, height, color="#b3b6b7")
            ax.annotate(f"{other:.3f}  {row['against']}", (other, y - height / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=7, color="#555")
        if _number(row["floor"]) is not None:
            ax.plot([_number(row["floor"])] * 2, [y - 0.45, y + 0.45], color="black", lw=2.5)
        if _number(row["published"]) is not None:
            ax.plot(_number(row["published"]), y + height / 2, marker="D", color="#c0392b", ms=7)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#2e86c1", label="key result"), Patch(color="#b3b6b7", label="compared with"),
                       Line2D([], [], color="black", lw=2.5, label="floor (asserted)"),
                       Line2D([], [], color="#c0392b", marker="D", ls="", label="published, same task")],
              loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, frameon=False, fontsize=8)
    ax.set_yticks(ys, [row["notebook"] for row in rows], fontsize=8)
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("value (accuracy, P@1 or ROC AUC: higher is better)")
    ax.grid(axis="x", alpha=0.3)
    return _save_figure(fig, png_path)


def write_results_figure(rows, png_path) -> Path | None:
    """Horizontal bars of every numeric metric, with its floor as a black tick; None if nothing to plot."""
    rows = [row for row in rows if _number(row["value"]) is not None]
    if not rows:
        return None
    from matplotlib.figure import Figure  # no pyplot: Agg canvas, no global backend state

    fig = Figure(figsize=(8, 1.0 + 0.32 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    values = [_number(row["value"]) for row in rows]
    colours = ["#c0392b" if row["below"] else "#2e86c1" for row in rows]
    ax.barh(ys, values, color=colours, height=0.6)
    floors = [(y, _number(row["floor"])) for y, row in zip(ys, rows) if _number(row["floor"]) is not None]
    if floors:
        ax.scatter([f for _, f in floors], [y for y, _ in floors], marker="|", s=300, color="black",
                   linewidths=2.5, zorder=3, label="floor (asserted)")
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    for y, value in zip(ys, values):
        ax.annotate(f"{value:.3f}", (value, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(ys, [f"{row['notebook']} · {row['metric']}" for row in rows], fontsize=8)
    ax.set_xlim(0, max(1.0, max(values + [f for _, f in floors]) * 1.12))
    ax.set_xlabel("value (bars) against floor (black tick); red = below floor")
    ax.grid(axis="x", alpha=0.3)
    return _save_figure(fig, png_path)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:70rem;margin:2rem auto;
     padding:0 1rem;line-height:1.45;color:#222}
h1{font-size:1.6rem;margin-bottom:.3rem} h2{margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555} ol.syllabus li{margin:.3rem 0}
.ok{color:#1e7e34;font-weight:600} .failed{color:#b02a37;font-weight:600} .unknown{color:#777}
.error{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem;color:#b02a37;display:block}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.below td{background:#fdecea} tr.below td.value{color:#b02a37;font-weight:700}
img{max-width:100%} footer{margin-top:2rem;color:#777;font-size:.85rem}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _href(name: str) -> str:
    return html.escape(quote(name), quote=True)


def _summary_values(records, key) -> str:
    values = sorted({str(r.get(key)) for r in records if r.get(key) not in (None, "")})
    return ", ".join(values) if values else "unknown"


def _duration(seconds) -> str:
    seconds = int(round(seconds or 0))
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m {seconds % 60:02d}s" if seconds >= 3600 else \
        f"{seconds // 60}m {seconds % 60:02d}s"


def write_index(site_dir, records, runs, times=None) -> Path:
    """Write ``index.html``, ``results.csv``, ``results.json`` and ``results.png`` into ``site_dir``.

    ``records``: the results JSON dicts.  ``runs``: one dict per notebook with
    ``stem``, ``title``, ``html`` (page file name or None), ``ok`` (True/False/None),
    ``seconds``, ``error`` and ``executed_at`` (ISO time or None).  ``times``: the
    measured times per profile (:func:`measured_times`), shown under each notebook
    of the syllabus that the table knows.
    """
    times = times or {}
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    rows = result_rows(records)
    by_notebook = {str(r.get("notebook")): r for r in records}
    pages = {run["stem"]: run.get("html") for run in runs}

    # data files
    with open(site_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if row[k] is None else row[k] for k in
                             ("notebook", "metric", "value", "floor", "reference", "profile", "device", "seconds")])
    (site_dir / "results.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    png = write_results_figure(rows, site_dir / "results.png")
    if png is None:
        (site_dir / "results.png").unlink(missing_ok=True)
    headlines = headline_rows(records)
    headlines_png = write_headlines_figure(headlines, site_dir / "headlines.png")
    if headlines_png is None:
        (site_dir / "headlines.png").unlink(missing_ok=True)

    # header line
    run_seconds = [run["seconds"] for run in runs if run.get("seconds") is not None]
    total = sum(run_seconds) if run_seconds else sum(_number(r.get("seconds")) or 0 for r in records)
    now = datetime.datetime.now().astimezone()
    ran = sorted(str(run["executed_at"]) for run in runs if run.get("executed_at"))
    when = (f"ran {ran[-1].replace('T', ' ')} · " if ran else "") + f"rendered {now.isoformat(sep=' ', timespec='seconds')}"
    failed = [run for run in runs if run.get("ok") is False]
    ran_count = sum(run.get("ok") is not None for run in runs)
    rehearsal = ('<p class="failed">A rehearsal: the profile\'s settings with every training budget cut to a '
                 "sliver, to check that its code runs end to end. These numbers are not results.</p>"
                 if any(r.get("rehearsal") for r in records) else "")
    meta = (f"Profile: <b>{_e(_summary_values(records, 'profile'))}</b> · "
            f"device: <b>{_e(_summary_values(records, 'device'))}</b> · {_e(when)} · "
            f"total time {_e(_duration(total))} · {ran_count} of {len(runs)} notebook(s) run, {len(failed)} failed")

    # syllabus
    items = []
    for run in runs:
        stem = run["stem"]
        number = re.match(r"\d+", stem)
        title = (by_notebook.get(stem) or {}).get("title") or run.get("title") or stem
        if number:   # a title taken from the heading may carry the number already ("04 · How big ...")
            title = re.sub(rf"^{number.group(0)}\s*[·.:-]?\s*", "", title) or title
        label = f"{number.group(0)}. {title}" if number else title
        link = f'<a href="{_href(run["html"])}">{_e(label)}</a>' if run.get("html") else _e(label)
        if run.get("ok") is True:
            status = '<span class="ok">ok</span>'
        elif run.get("ok") is False:
            status = '<span class="failed">failed</span>'
        else:
            status = '<span class="unknown">not run</span>'
        seconds = f" · {_duration(run['seconds'])}" if run.get("seconds") is not None else ""
        error = f'<span class="error">{_e(run["error"])}</span>' if run.get("error") else ""
        measured = (f'<br><small class="meta">measured: {_e(profile_times_line(times[stem]))}</small>'
                    if stem in times else "")
        items.append(f"<li>{link} <small>({_e(stem)}{_e(seconds)})</small> — {status}{error}{measured}</li>")
    syllabus = "\n".join(items) or "<li>No notebooks.</li>"
    syllabus_note = ("<p>In brackets, this run's time. Under each notebook, its time in each profile when last "
                     "measured, and on what (docs/notebook_times.csv): the fast profile is for a CPU, the full "
                     "profile for a GPU.</p>\n" if any(run["stem"] in times for run in runs) else "")

    def notebook_link(stem: str) -> str:
        page = pages.get(stem)
        return f'<a href="{_href(page)}">{_e(stem)}</a>' if page else _e(stem)

    # results table
    lines = []
    for row in rows:
        name = notebook_link(row["notebook"])
        flag = " ▼ below floor" if row["below"] else (" (missing)" if row["missing"] else "")
        value = _fmt(row["value"]) if row["value"] is not None else "—"
        below = ' class="below" title="below its floor"' if row["below"] else ""
        lines.append(
            f'<tr{below}><td>{name}</td><td>{_e(row["metric"])}</td>'
            f'<td class="num value">{_e(value + flag)}</td><td class="num">{_e(_fmt(row["floor"]))}</td>'
            f'<td>{_e(row["reference"])}</td><td>{_e(row["profile"])}</td><td>{_e(row["device"])}</td>'
            f'<td class="num">{_e(_fmt(row["seconds"], 1))}</td></tr>')
    if lines:
        header = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
        table = (f'<table class="results">\n<thead><tr>{header}</tr></thead>\n<tbody>\n'
                 + "\n".join(lines) + "\n</tbody>\n</table>")
    else:
        table = "<p>No results recorded yet.</p>"
    figure = ('<p><img src="results.png" alt="Each notebook\'s metrics as bars, with their floors as black ticks">'
              "</p>") if png else ""

    # headlines: one row per notebook
    key_lines = []
    for row in headlines:
        name = notebook_link(row["notebook"])
        published = " — ".join(x for x in (_fmt(row["published"]), row["reference"] or "") if x)
        key_lines.append(
            f'<tr><td>{name}</td><td>{_e(row["metric"])}</td><td class="num value">{_e(_fmt(row["value"]) or "—")}</td>'
            f'<td>{_e(row["against"])}</td><td class="num">{_e(_fmt(row["against_value"]))}</td>'
            f'<td class="num">{_e(_fmt(row["floor"]))}</td><td>{_e(published)}</td><td>{_e(row["profile"])}</td>'
            f'<td>{_e(row["device"])}</td><td class="num">{_e(_fmt(row["seconds"], 1))}</td></tr>')
    if key_lines:
        key_header = "".join(f"<th>{_e(c)}</th>" for c in HEADLINE_COLUMNS)
        headline_section = (
            "<h2>Headlines</h2>\n<p>Each notebook's key result beside what it is compared with — the baseline a "
            "student would try first, or the other side of the notebook's experiment, measured under the same "
            "budget.</p>\n"
            f'<table class="headlines">\n<thead><tr>{key_header}</tr></thead>\n<tbody>\n' + "\n".join(key_lines)
            + "\n</tbody>\n</table>\n"
            + ('<p><img src="headlines.png" alt="Each notebook\'s key result against what it is compared with"></p>'
               if headlines_png else ""))
    else:
        headline_section = ""
    downloads = ('<p>Download: <a href="results.csv">results.csv</a> · <a href="results.json">results.json</a>'
                 "</p>")

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(PAGE_TITLE)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{_e(PAGE_TITLE)}</h1>
<p class="meta">{meta}</p>
{rehearsal}
<h2>Syllabus</h2>
{syllabus_note}<ol class="syllabus">
{syllabus}
</ol>
{headline_section}
<h2>Results</h2>
<p>Every metric the notebooks recorded. <b>Floor</b> is the value the notebook asserts it reaches;
rows shaded red fell below it.</p>
{table}
{figure}
{downloads}
<footer>Generated by tools/render_course.py.</footer>
</body>
</html>
"""
    index = site_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


# --------------------------------------------------------------------------- main
def first_heading(nb) -> str | None:
    """The text of the notebook's first markdown heading, if any."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = re.match(r"\s*#{1,6}\s+(.+?)\s*#*\s*$", line)
                if match:
                    return match.group(1)
    return None


def measured_times(path=MEASURED_TIMES) -> dict[str, dict[str, dict]]:
    """``{notebook: {profile: row}}`` from the measured-times CSV (columns ``TIME_FIELDS``): each
    notebook's wall time in each profile, the device it was measured on, when, the time cap on its ARC
    training if it had one (``arc_seconds``, as ``$CAB420_ARC_SECONDS``; empty: none), and a note.  A missing
    file gives ``{}`` (the syllabus then shows this run's times only); a malformed one raises
    ``ValueError`` naming the file, the line and what is wrong."""
    path = Path(path)
    if not path.is_file():
        return {}
    times: dict[str, dict[str, dict]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TIME_FIELDS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: the header must name the columns {', '.join(TIME_FIELDS)}; "
                             f"{', '.join(missing)} missing")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if row["profile"] not in PROFILES:
                raise ValueError(f"{where}: profile {row['profile']!r} is not one of {', '.join(PROFILES)}")
            try:
                seconds = float(row["seconds"])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: seconds {row['seconds']!r} is not a number") from None
            if not 0 < seconds < float("inf"):
                raise ValueError(f"{where}: seconds must be above 0 and finite, not {row['seconds']}")
            given = (row["arc_seconds"] or "").strip()   # empty: no time cap
            cap = _number(given) if given else None
            if given and not (cap is not None and 0 < cap < float("inf")):
                raise ValueError(f"{where}: arc_seconds (the ARC's time cap) must be a number of seconds above 0, "
                                 f"or empty for none; not {row['arc_seconds']!r}")
            if not row["notebook"] or not row["device"]:
                raise ValueError(f"{where}: every row names its notebook and the device it was measured on")
            if row["profile"] in times.get(row["notebook"], {}):
                raise ValueError(f"{where}: a second {row['profile']} time for {row['notebook']}")
            times.setdefault(row["notebook"], {})[row["profile"]] = dict(row, seconds=seconds, arc_seconds=cap)
    return times


def profile_times_line(times: dict[str, dict]) -> str:
    """One notebook's measured times, e.g. ``fast 0m 44s (2-core CPU, 2026-12-01) · full: not measured``;
    a time whose ARC training had a time cap says so (``... (2-core CPU, 2026-12-06; ARC time cap 4200 s)``):
    the cap, not the budget, set it."""
    parts = []
    for profile in PROFILES:
        row = times.get(profile)
        if not row:
            parts.append(f"{profile}: not measured")
            continue
        when = f", {row['measured']}" if row["measured"] else ""
        cap = f"; ARC time cap {row['arc_seconds']:g} s" if row.get("arc_seconds") else ""
        parts.append(f"{profile} {_duration(row['seconds'])} ({row['device']}{when}{cap})")
    return " · ".join(parts)


def _run_info(executed_path: Path) -> dict:
    """Status, seconds, error and title stored in an executed copy."""
    nb = nbformat.read(executed_path, as_version=4)
    info = dict(nb.metadata.get(RUN_KEY) or {})
    if not info:  # no record of the run: a copy with an error output failed
        errors = [(i, o) for i, cell in enumerate(nb.cells) for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        info = {"ok": not errors, "seconds": None,
                "error": (f"cell {errors[0][0] + 1}: {errors[0][1].get('ename')}: {errors[0][1].get('evalue')}"
                          if errors else None)}
    info["title"] = first_heading(nb)
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                        help="folder of lecture notebooks (default: notebooks)")
    parser.add_argument("--build", type=Path, default=Path(os.environ.get("CAB420_BUILD") or "build"),
                        help="build folder (default: $CAB420_BUILD or build)")
    parser.add_argument("--only", nargs="+", metavar="PATTERN", default=None,
                        help="only notebooks whose file name contains one of these")
    parser.add_argument("--timeout", type=int, default=None,
                        help=f"per-cell time limit in seconds (default: {FAST_CELL_TIMEOUT} in the fast profile, "
                             f"{FULL_CELL_TIMEOUT} where the full profile may run, and at least "
                             f"$CAB420_ARC_SECONDS + {FAST_CELL_TIMEOUT})")
    parser.add_argument("--no-execute", action="store_true",
                        help="render from existing build/executed/*.ipynb and build/results/*.json")
    parser.add_argument("--rehearse", action="store_true",
                        help="a rehearsal (CAB420_REHEARSAL=1): failed asserts are listed, not fatal")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    times = measured_times()   # read first: a malformed table stops the job before hours of training, not after
    build = args.build.resolve()
    executed_dir, results_dir, site_dir = build / "executed", build / "results", build / "site"

    if args.no_execute:
        every = sorted(executed_dir.glob("*.ipynb"))
    else:
        every = sorted(args.notebooks.glob("*.ipynb"))
    selected = [p for p in every if not args.only or any(pat in p.name for pat in args.only)]
    if not selected:
        print(f"No notebooks{' matching ' + ' '.join(args.only) if args.only else ''} in "
              f"{executed_dir if args.no_execute else args.notebooks}", file=sys.stderr)
        return 1

    env = dict(os.environ, CAB420_BUILD=str(build))  # results land where we read them
    env.pop("MPLBACKEND", None)  # let ipykernel choose its inline backend, so figures are captured
    if args.rehearse:
        env["CAB420_REHEARSAL"] = "1"
    timeout = args.timeout if args.timeout is not None else default_cell_timeout(env)
    summary = []
    for path in selected:
        stem = path.stem
        executed = executed_dir / f"{stem}.ipynb"
        if not args.no_execute:
            (results_dir / f"{stem}.json").unlink(missing_ok=True)  # a failed run leaves no stale results
            print(f"[run] {path}", flush=True)
            ok, seconds, error = execute_notebook(path, executed, timeout, env=env,
                                                  allow_error_names=REHEARSAL_ALLOWED if args.rehearse else ())
            print(f"      {'ok' if ok else 'FAILED'} in {seconds:.1f} s" + (f" — {error}" if error else ""),
                  flush=True)
            for line in _run_info(executed).get("unmet") or []:
                print(f"      claim not met at a rehearsal's budget (expected): {line}", flush=True)
        source_dir = args.notebooks if args.notebooks.is_dir() else None
        try:
            render_html(executed, site_dir / f"{stem}.html", source_dir=source_dir)
        except Exception as exc:
            print(f"      could not render {executed}: {exc}", file=sys.stderr)
            (site_dir / f"{stem}.html").unlink(missing_ok=True)
        info = _run_info(executed)
        summary.append((stem, info.get("ok"), info.get("seconds"), info.get("error"),
                        (site_dir / f"{stem}.html").is_file()))

    # syllabus: every notebook in the course, with the status its executed copy records
    runs = []
    for path in every:
        stem = path.stem
        executed = executed_dir / f"{stem}.ipynb"
        info = _run_info(executed) if executed.is_file() else {"ok": None, "seconds": None, "error": None}
        if not executed.is_file():
            info["title"] = first_heading(nbformat.read(path, as_version=4))
        runs.append({"stem": stem, "title": info.get("title"), "ok": info.get("ok"),
                     "seconds": info.get("seconds"), "error": info.get("error"),
                     "executed_at": info.get("executed_at"),
                     "html": f"{stem}.html" if (site_dir / f"{stem}.html").is_file() else None})
    records = load_results(results_dir)
    index = write_index(site_dir, records, runs, times)

    width = max([len("notebook")] + [len(s[0]) for s in summary])
    print(f"\n{'notebook':<{width}}  {'status':<8}  {'seconds':>8}")
    for stem, ok, seconds, error, rendered in summary:
        status = "ok" if ok and rendered else "FAILED"
        secs = f"{seconds:.1f}" if seconds is not None else "-"
        print(f"{stem:<{width}}  {status:<8}  {secs:>8}" + (f"  {error}" if error else "")
              + ("" if rendered else "  (not rendered)"))
    print(f"\n{len(records)} result file(s); site: {index}")

    checked, problems = check_links(site_dir)
    if problems:
        print(f"links: {len(problems)} of {checked} reference(s) broken:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"links: all {checked} reference(s) in {len(list(site_dir.rglob('*.html')))} page(s) resolve "
              "within the site")
    if find_chromium():
        try:
            shot = screenshot(index, site_dir / "screenshots" / "index.png")
            print(f"screenshot: {shot}")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"screenshot: none ({exc})", file=sys.stderr)
    else:
        print(f"screenshot: none (no Chromium; install Debian's 'chromium' or set {BROWSER_VARIABLE})")
    return 0 if all(ok and rendered for _, ok, _, _, rendered in summary) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
