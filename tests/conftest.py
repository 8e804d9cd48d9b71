"""Shared fixtures: the real Fashion-MNIST (skipped without the data unless
CAB420_REQUIRE_DATA=1, which CI sets), and a private build folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
if not os.environ.get("CAB420_DATA") and SHARED.is_dir():
    os.environ["CAB420_DATA"] = str(SHARED)


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST with the course's default validation split."""
    from cab420utils import data

    try:
        return data.load_fashion_mnist()
    except data.DataNotFoundError as error:
        if os.environ.get("CAB420_REQUIRE_DATA") == "1":
            pytest.fail(f"CAB420_REQUIRE_DATA=1 but the data is missing:\n{error}")
        pytest.skip(f"Fashion-MNIST not available: {error}".splitlines()[0])


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CAB420_BUILD", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.fixture(scope="session")
def child_result():
    """Run a Python script in a fresh process (TensorFlow's devices and Keras' backend are chosen once per
    process) with the project on its path, ``args`` as its ``sys.argv[1:]`` and ``env`` added, and return what
    it printed as ``RESULT {json}``."""
    def run(script: str, args=(), **env) -> dict:
        environment = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT),
                           **env)
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=environment, capture_output=True,
                              text=True, timeout=300)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, f"child failed ({done.returncode}):\n{done.stderr[-3000:]}"
        return json.loads(lines[-1].removeprefix("RESULT "))

    return run
