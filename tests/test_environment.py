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


def test_python_version_is_allowed():
    text = (ROOT / "environment.yml").read_text()
    major, minor = map(int, re.search(r"python=(\d+)\.(\d+)", text).groups())
    assert (major, minor) >= (3, 10)
