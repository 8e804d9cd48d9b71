"""tools/course.py: the environment its jobs run in (it is standard-library only, so it imports here)."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "course.py"
spec = importlib.util.spec_from_file_location("course_runner", SCRIPT)
course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course)


def test_course_env_defaults(monkeypatch, tmp_path):
    for name in ("CAB420_PROFILE", "CAB420_BUILD", "TF_FORCE_GPU_ALLOW_GROWTH", "KERAS_BACKEND", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAB420_DATA", str(tmp_path / "data" / ".." / "data"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = course.course_env("fast", tmp_path / "build")
    assert env["CAB420_PROFILE"] == "fast" and env["CAB420_BUILD"] == str(tmp_path / "build")
    assert env["CAB420_DATA"] == str((tmp_path / "data").resolve())   # absolute: notebooks run in notebooks/
    assert env["KERAS_BACKEND"] == "tensorflow"
    # pytest's process holds TensorFlow while nbval starts kernels: no process may map the whole GPU
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert "MPLBACKEND" not in env
    assert env["PATH"].startswith(str(course.venv_python().parent))


def test_course_env_keeps_what_the_user_set(monkeypatch, tmp_path):
    monkeypatch.setenv("CAB420_PROFILE", "full")
    monkeypatch.setenv("CAB420_BUILD", str(tmp_path / "mine"))
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    env = course.course_env("fast", tmp_path / "build")
    assert env["CAB420_PROFILE"] == "full"
    assert env["CAB420_BUILD"] == str(tmp_path / "mine")
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"


def test_lab_opens_the_repository_root(monkeypatch):
    monkeypatch.setattr(course.os, "geteuid", lambda: 1000, raising=False)
    command = course.lab_command(Path("/venv/bin/python"), ["--no-browser", "--port", "8890"])
    assert command == ["/venv/bin/python", "-m", "jupyterlab", f"--notebook-dir={course.ROOT}",   # notebooks/,
                       "--no-browser", "--port", "8890"]           # exercises/, README in view; the rest to JupyterLab
    monkeypatch.setattr(course.os, "geteuid", lambda: 0, raising=False)
    assert "--allow-root" in course.lab_command(Path("/venv/bin/python"), [])   # else it refuses in a container


def test_jupyterlab_is_installed_in_the_course_environment():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(".")[0] == "4", done.stdout


def test_an_unsupported_python_is_told_what_to_install():
    assert course.python_problem((3, 11, 0)) is None and course.python_problem((3, 13, 2)) is None
    for old_or_new in ((3, 10, 12), (3, 14, 0)):
        message = course.python_problem(old_or_new)
        assert ".".join(map(str, old_or_new)) in message          # what it found
        assert "3.11, 3.12, 3.13" in message                      # what it needs
        assert "apt-get install python3.11" in message and "conda create" in message   # how to get it
