"""The rendered course as a reader sees it: a tiny course rendered by tools/render_course.py,
opened in headless Chromium (Debian's ``chromium``) — screenshots of the index and of a
notebook page, the index's results table and chart, and no broken link, all offline.

``python3 tools/course.py test`` installs Chromium when it can (root with apt-get).  Without
one these tests skip, or fail when ``CAB420_REQUIRE_BROWSER=1`` (CI sets it).
"""
from __future__ import annotations

import importlib.util
import os
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import nbformat
import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "render_course.py"
spec = importlib.util.spec_from_file_location("render_course_browser", SCRIPT)
render_course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_course)

STEM = "01-tiny"
LECTURE = r"""# A tiny lecture

The margin triplet loss is $L = \max(d_{ap} - d_{an} + m,\ 0)$; its figure is below.

$$d(a, b) = \lVert f(a) - f(b) \rVert_2$$
"""
PLOT = """
%matplotlib inline
import matplotlib.pyplot as plt
from matplotlib.animation import FuncAnimation
from IPython.display import HTML, display

fig, ax = plt.subplots(figsize=(4, 3))
ax.plot([0, 1, 2, 3], [0.55, 0.8, 0.9, 0.93], marker="o", color="tab:blue")
ax.set(title="Validation P@1 by epoch", xlabel="epoch", ylabel="P@1")
plt.show()

fig, ax = plt.subplots(figsize=(2, 2))
line, = ax.plot([0, 1], [0, 1])
display(HTML(FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=2).to_jshtml()))
plt.close(fig)
"""
METRICS = {"P@1": 0.93, "MAP@R": 0.41, "ROC AUC": 0.97}


@pytest.fixture(scope="module")
def browser():
    found = render_course.find_chromium()
    if found is None:
        why = ("no Chromium on this machine: `python3 tools/course.py test` installs Debian's 'chromium' "
               "when run as root with apt-get; or install it yourself (sudo apt-get install chromium), or "
               f"set {render_course.BROWSER_VARIABLE} to a Chromium/Chrome")
        if os.environ.get("CAB420_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CAB420_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory):
    """Execute a 2-cell notebook, record results as cab420utils.results does, render the site."""
    from cab420utils import results

    root = tmp_path_factory.mktemp("tiny-course")
    notebooks, build = root / "notebooks", root / "build"
    notebooks.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(LECTURE),
                                                   nbformat.v4.new_code_cell(PLOT)]),
                   notebooks / f"{STEM}.ipynb")
    run = SimpleNamespace(notebook=STEM, title="A tiny lecture", profile="fast", device="CPU (2 cores)",
                          seconds=12.34, seed=420, versions={"python": "3", "keras": "3"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAB420_BUILD", str(build))
        mp.setenv(render_course.BROWSER_VARIABLE, browser)
        executed = render_course.main(["--notebooks", str(notebooks), "--build", str(build), "--timeout", "120"])
        results.record_results(run, METRICS, references={"P@1": "slides: 0.90"}, floors={"P@1": 0.85},
                               headline=("P@1", "MAP@R"))
        rendered = render_course.main(["--notebooks", str(notebooks), "--build", str(build), "--no-execute"])
    assert executed == 0 and rendered == 0
    return build / "site"


class Elements(HTMLParser):
    """Start tags with their attributes, and the text inside each <table>'s body rows."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.rows, self._in_body, self._row = [], [], False, None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "tr" and self._row is not None:
            self.rows.append(" ".join(self._row))
            self._row = None

    def handle_data(self, data):
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def parse(dom: str) -> Elements:
    elements = Elements()
    elements.feed(dom)
    return elements


def not_blank(png: Path) -> None:
    """The screenshot exists and shows something: many colours, not one flat page."""
    from PIL import Image

    assert png.is_file() and png.stat().st_size > 0, png
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    drawn = np.mean(np.any(pixels < 200, axis=-1))  # share of pixels clearly darker than the page
    assert colours > 20 and drawn > 0.01, f"{png} looks blank: {colours} colours, {drawn:.1%} drawn"


def assert_links_resolve(page: Path, dom: str) -> int:
    """Every relative href/src in ``dom`` names an existing file; nothing is loaded from the network."""
    checked = 0
    for tag, attrs in parse(dom).tags:
        for name in ("href", "src"):
            value = (attrs.get(name) or "").strip()
            parts = urlsplit(value)
            if not value or value.startswith("#") or parts.scheme in ("data", "mailto", "javascript"):
                continue
            if parts.scheme or value.startswith("//"):
                assert tag == "a", f"{page.name}: <{tag} {name}={value!r}> would load from the network"
                continue
            assert (page.parent / unquote(parts.path)).is_file(), f"{page.name}: broken link {value!r}"
            checked += 1
    return checked


def test_screenshots_are_not_blank(site, browser, tmp_path):
    not_blank(site / "screenshots" / "index.png")  # written by render_course.main itself
    page = render_course.screenshot(site / f"{STEM}.html", tmp_path / "notebook.png", size=(1000, 1400),
                                    browser=browser)
    not_blank(page)


def test_index_shows_results_table_and_chart(site, browser):
    dom = render_course.dump_dom(site / "index.html", browser=browser)
    elements = parse(dom)
    tables = [attrs for tag, attrs in elements.tags if tag == "table"]
    assert any("results" in (attrs.get("class") or "") for attrs in tables)
    assert any("headlines" in (attrs.get("class") or "") for attrs in tables)
    assert len(elements.rows) == 1 + len(METRICS)  # the headline, then one row per recorded metric
    assert "P@1 0.930 MAP@R 0.410 0.850" in elements.rows[0]
    p_at_1 = next(row for row in elements.rows if "P@1" in row)
    assert "0.930" in p_at_1 and "0.850" in p_at_1 and "slides: 0.90" in p_at_1 and "fast" in p_at_1
    images = [attrs["src"] for tag, attrs in elements.tags if tag == "img"]
    assert "results.png" in images and (site / "results.png").stat().st_size > 1000
    assert "headlines.png" in images and (site / "headlines.png").stat().st_size > 1000
    links = [attrs.get("href") for tag, attrs in elements.tags if tag == "a"]
    assert f"{STEM}.html" in links and "results.csv" in links
    assert "A tiny lecture" in dom and ">ok<" in dom


def test_notebook_page_renders_offline(site, browser):
    page = site / f"{STEM}.html"
    source = page.read_text()
    assert "cdnjs" not in source and "font-awesome" not in source  # nothing to fetch
    dom = render_course.dump_dom(page, browser=browser)
    tags = parse(dom).tags
    figures = [attrs for tag, attrs in tags if tag == "img" and attrs.get("src", "").startswith("data:image/png")]
    assert figures, "the matplotlib figure is not in the page"
    assert any(tag == "button" for tag, _ in tags) and ".fa-play::before" in dom  # animation controls
    try:
        import latex2mathml  # noqa: F401
    except ImportError:
        assert '<code class="tex">' in dom  # TeX shown as text when it cannot become MathML
    else:
        assert sum(tag == "math" for tag, _ in tags) == 2  # inline and display math, drawn by the browser
    assert not [attrs for tag, attrs in tags if tag == "script" and attrs.get("src")]


def test_no_broken_links(site, browser):
    checked = 0
    for page in (site / "index.html", site / f"{STEM}.html"):
        checked += assert_links_resolve(page, render_course.dump_dom(page, browser=browser))
    assert checked >= 4  # the notebook page, results.png, results.csv, results.json from the index
    total, problems = render_course.check_links(site)
    assert problems == [] and total >= checked


# --------------------------------------------------------------------------- set-up (no browser needed)
def load_course_runner():
    path = SCRIPT.parent / "course.py"
    runner_spec = importlib.util.spec_from_file_location("course_runner", path)
    runner = importlib.util.module_from_spec(runner_spec)
    runner_spec.loader.exec_module(runner)
    return runner


def test_ensure_chromium_installs_with_apt_get_once(tmp_path, monkeypatch, capsys):
    """A fresh machine: 'install' fails on stale package lists, 'update' runs, the retry installs."""
    runner = load_course_runner()
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(f"""#!/bin/sh
PATH=/usr/bin:/bin
echo "$@" >> {log}
case "$1" in
  update) touch {tmp_path}/updated ;;
  install) [ -e {tmp_path}/updated ] || {{ echo "E: Unable to locate package chromium"; exit 100; }}
           printf '#!/bin/sh\\n' > {bin_dir}/chromium; chmod +x {bin_dir}/chromium ;;
esac
""")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv(runner.BROWSER_VARIABLE, raising=False)
    monkeypatch.delenv("CAB420_INSTALL_BROWSER", raising=False)
    monkeypatch.setattr(runner.os, "geteuid", lambda: 0)
    assert runner.ensure_chromium() == str(bin_dir / "chromium")
    assert log.read_text().splitlines() == ["install -y -qq --no-install-recommends chromium", "update -qq",
                                            "install -y -qq --no-install-recommends chromium"]
    assert runner.ensure_chromium() == str(bin_dir / "chromium")  # found: apt-get not asked again
    assert len(log.read_text().splitlines()) == 3
    assert "Unable to locate" not in capsys.readouterr().out  # quiet when it works


def test_ensure_chromium_explains_when_it_cannot_install(tmp_path, monkeypatch, capsys):
    runner = load_course_runner()
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser, no apt-get
    monkeypatch.delenv(runner.BROWSER_VARIABLE, raising=False)
    monkeypatch.delenv("CAB420_INSTALL_BROWSER", raising=False)
    assert runner.ensure_chromium() is None
    assert "apt-get install chromium" in capsys.readouterr().out
