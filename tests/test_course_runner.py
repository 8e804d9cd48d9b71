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


def test_the_two_lanes_hold_every_test_file_once_with_08_before_its_readers():
    one, = course.lane_paths(1)
    assert one[0] == str(course.ROOT / "tests") and str(course.ROOT / "notebooks") in one
    first, second = course.lane_paths(2)
    assert first[0] == str(course.ROOT / "tests")
    notebooks = sorted(str(path) for path in (course.ROOT / "notebooks").glob("*.ipynb"))
    named = [path for path in first + second if path.endswith(".ipynb")]
    assert sorted(named) == notebooks                                   # every notebook, none twice
    assert second[-2:] == [str(course.ROOT / "solutions"), str(course.ROOT / "exercises")]
    arc, contextual = (next(k for k, path in enumerate(second) if Path(path).name.startswith(prefix))
                       for prefix in ("08-", "09-"))
    assert arc < contextual < len(second) - 2        # 09 and the 08/09 exercises load the ARC that 08 saves


def test_one_lane_when_asked_on_one_core_or_for_named_files(monkeypatch):
    monkeypatch.setattr(course, "usable_cores", lambda: 2)
    assert course.pytest_lanes({}, ["--durations=60", "-k", "loss"]) == course.lane_paths(2)
    assert course.pytest_lanes({"CAB420_TEST_LANES": "1"}, []) == course.lane_paths(1)
    # named files run alone: pytest finds them among the arguments, the lane adds nothing
    assert course.pytest_lanes({}, [str(course.ROOT / "tests" / "test_losses.py") + "::test_contrastive"]) == [[]]
    monkeypatch.setattr(course, "usable_cores", lambda: 1)
    assert course.pytest_lanes({}, []) == course.lane_paths(1)
    try:
        course.pytest_lanes({"CAB420_TEST_LANES": "3"}, [])
    except SystemExit as stop:
        assert "CAB420_TEST_LANES must be 1 or 2" in str(stop)
    else:
        raise AssertionError("CAB420_TEST_LANES=3 was accepted")


def test_named_paths_run_alone_in_one_process(monkeypatch):
    monkeypatch.setattr(course, "usable_cores", lambda: 2)
    losses = str(course.ROOT / "tests" / "test_losses.py")
    assert course.named_paths(["-k", "margin", losses + "::test_contrastive", "--durations=5"]) == [
        losses + "::test_contrastive"]
    assert course.named_paths(["-k", "not_a_path", "--maxfail=1"]) == []


def test_lanes_run_side_by_side_and_each_line_says_its_lane(capsys):
    import sys

    outcomes = course._run_side_by_side([[sys.executable, "-c", "print('a'); print('b')"],
                                         [sys.executable, "-c", "import sys; print('c'); sys.exit(3)"]], {})
    assert [rc for rc, _, _ in outcomes] == [0, 3] and all(seconds > 0 for _, seconds, _ in outcomes)
    assert [counts for _, _, counts in outcomes] == [None, None]       # neither printed pytest's closing line
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == ["[lane 1] a", "[lane 1] b", "[lane 2] c"]
    assert lines.index("[lane 1] a") < lines.index("[lane 1] b")


def test_the_lanes_closing_lines_add_up_to_one_plain_line():
    read = course.pytest_counts
    one = read("=========== 300 passed, 2 skipped, 4 warnings in 1512.33s (0:25:12) ============")
    two = read("==== 1 failed, 270 passed, 1 error in 2001.00s (0:33:21) ====")
    assert one == {"passed": 300, "skipped": 2, "warnings": 4}
    assert two == {"failed": 1, "passed": 270, "error": 1}
    assert read("=== no tests ran in 0.01s ===") == {}
    assert read("tests/test_losses.py ....    [ 10%]") is None and read("= 3 passed ... not the end =") is None
    assert course.closing_line([one, two]) == "total: 570 passed, 2 failed, 2 skipped"
    assert course.closing_line([one, {"passed": 5}]) == "total: 305 passed, 0 failed, 2 skipped"
    assert course.closing_line([one, None]) == "total: 300 passed, 1 failed, 2 skipped"  # a lane that crashed
