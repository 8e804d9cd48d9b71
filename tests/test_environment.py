"""environment.yml and pyproject.toml describe the same pins."""
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def normalise(name):
    return re.sub(r"[-_.]+", "-", name.lower())


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([\w.]+)", spec).groups()
        pins[normalise(name)] = version
    return pins


def environment_pins():
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.fullmatch(r"\s*-\s*([A-Za-z0-9_.\-]+)\s*(==|=)\s*([\w.]+)\s*", line)
        if m and m.group(1) != "python":
            pins[normalise(m.group(1))] = m.group(3)
    return pins


def test_pins_agree():
    assert pyproject_pins() == environment_pins()


def supported_pythons():
    """The (major, minor) versions pyproject.toml's requires-python (">=3.a,<3.b") admits."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec.replace(" ", "")).groups()
    return [(3, minor) for minor in range(int(low), int(high))]


def test_python_version_is_allowed():
    text = (ROOT / "environment.yml").read_text()
    major, minor = map(int, re.search(r"python=(\d+)\.(\d+)", text).groups())
    assert (major, minor) in supported_pythons()


def test_the_course_runner_checks_the_same_pythons():
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_runner", ROOT / "tools" / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    low, high = course.SUPPORTED_PYTHON
    assert [(3, minor) for minor in range(low[1], high[1] + 1)] == supported_pythons()
