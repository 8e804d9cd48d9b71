"""cab420utils.limits: the cores and memory a process may use, its container's CPU quota, memory limit and
affinity counted, on fake cgroup trees (v1 and v2) so the test needs no container; and what a notebook's first
cell does with them (profiles.limit_cpu_threads, profiles.memory_warning)."""
import os
from pathlib import Path

import pytest

from cab420utils import limits, profiles


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def big_host(monkeypatch):
    """A 64-core machine on which this process may run on every core: only the quota can lower the count."""
    monkeypatch.setattr(limits.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(limits.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)


def test_v2_quota_of_a_cgroup_above_this_one_counts(tmp_path, big_host):
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/ci/job\n")
    write(tmp_path / "ci" / "job" / "cpu.max", "max 100000\n")       # the job's own cgroup: no limit
    write(tmp_path / "ci" / "cpu.max", "250000 100000\n")            # its parent: 2.5 cores
    assert limits.cpu_quota(tmp_path, proc) == 2.5
    assert limits.usable_cores(tmp_path, proc) == 3                   # rounded up: the third core part-time


def test_v1_quota_inside_a_container_that_names_the_hosts_path(tmp_path, big_host):
    # docker run --cpus 1: /proc/self/cgroup names the host's path, absent inside; the mount's root holds it
    proc = tmp_path / "proc-cgroup"
    write(proc, "7:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", "100000\n")
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert limits.cpu_quota(tmp_path, proc) == 1.0
    assert limits.usable_cores(tmp_path, proc) == 1


def test_the_smallest_quota_wins_and_no_quota_leaves_the_cores(tmp_path, big_host):
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/a\n")
    write(tmp_path / "cpu.max", "800000 100000\n")
    write(tmp_path / "a" / "cpu.max", "200000 100000\n")
    assert limits.cpu_quota(tmp_path, proc) == 2.0
    write(tmp_path / "a" / "cpu.max", "max 100000\n")
    write(tmp_path / "cpu.max", "max 100000\n")
    assert limits.cpu_quota(tmp_path, proc) is None
    assert limits.usable_cores(tmp_path, proc) == 64


@pytest.mark.parametrize("proc_text, cpu_max", [
    ("0::/\n", "garbage"),               # one field where two belong
    ("0::/\n", "half 100000"),           # not a number
    ("0::/\n", "100000 0"),              # a period of 0
    ("not a cgroup line\n", "100000 100000"),
    ("", "100000 100000"),               # no cgroups named
], ids=["one-field", "not-a-number", "zero-period", "not-a-cgroup-line", "no-cgroups"])
def test_unreadable_or_malformed_files_mean_no_quota_never_an_error(tmp_path, big_host, proc_text, cpu_max):
    proc = tmp_path / "proc-cgroup"
    write(proc, proc_text)
    write(tmp_path / "cpu.max", cpu_max)
    assert limits.cpu_quota(tmp_path, proc) is None
    assert limits.usable_cores(tmp_path, proc) == 64


def test_no_proc_file_no_cgroups(tmp_path, big_host):
    assert limits.cpu_quota(tmp_path, tmp_path / "absent") is None
    assert limits.usable_cores(tmp_path, tmp_path / "absent") == 64


def test_affinity_counts(tmp_path, monkeypatch):
    # taskset -c 0: one core of the machine's two
    monkeypatch.setattr(limits.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(limits.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert limits.usable_cores(tmp_path, tmp_path / "absent") == 1


def test_this_machine(monkeypatch):
    found = limits.usable_cores()
    assert 1 <= found <= (os.cpu_count() or 1)
    monkeypatch.setattr(profiles, "visible_gpus", lambda: [])
    assert profiles.describe_device() == f"CPU ({found} cores)"     # what each notebook's top line says


@pytest.fixture
def no_thread_settings(monkeypatch):
    """TensorFlow's thread variables absent now and restored afterwards, whatever the test sets (setenv first,
    so that monkeypatch records them and removes them again)."""
    for name in profiles.TF_THREAD_VARIABLES:
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)


def test_tensorflows_threads_follow_a_quota_below_the_machines_cores(monkeypatch):
    monkeypatch.setattr(profiles.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(profiles, "usable_cores", lambda: 2)
    environ = {}
    assert profiles.limit_cpu_threads(environ) == 2
    assert environ == {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"}
    preset = {"TF_NUM_INTRAOP_THREADS": "8"}                    # someone chose: left as it is
    assert profiles.limit_cpu_threads(preset) is None and preset == {"TF_NUM_INTRAOP_THREADS": "8"}
    monkeypatch.setattr(profiles, "usable_cores", lambda: 64)  # no quota: TensorFlow's own choice stands
    environ = {}
    assert profiles.limit_cpu_threads(environ) is None and environ == {}


def test_setup_limits_and_announces_the_threads(monkeypatch, capsys, no_thread_settings):
    monkeypatch.setattr(profiles.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(profiles, "usable_cores", lambda: 2)
    profiles.setup("00-test", "A test", profile="fast")
    assert "THREADS : this process may use 2 of the machine's 64 cores" in capsys.readouterr().out
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == os.environ["TF_NUM_INTEROP_THREADS"] == "2"


def test_setup_says_nothing_of_threads_without_a_quota(monkeypatch, capsys, no_thread_settings):
    monkeypatch.setattr(profiles, "usable_cores", lambda: os.cpu_count() or 1)
    profiles.setup("00-test", "A test", profile="fast")
    assert "THREADS" not in capsys.readouterr().out
    assert not any(name in os.environ for name in profiles.TF_THREAD_VARIABLES)


def test_memory_limit_v2_and_v1(tmp_path):
    proc = tmp_path / "proc-cgroup"
    write(proc, "0::/hub/user\n")
    write(tmp_path / "hub" / "user" / "memory.max", "max\n")
    write(tmp_path / "hub" / "memory.max", f"{2 ** 30}\n")                # a JupyterHub's 1 GiB, one level up
    assert limits.memory_limit(tmp_path, proc) == 2 ** 30
    assert limits.usable_memory(tmp_path, proc) == 2 ** 30             # below any machine's RAM
    v1 = tmp_path / "v1"
    write(proc, "4:memory:/docker/abc\n")
    write(v1 / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")   # v1's "no limit"
    assert limits.usable_memory(v1, proc) == limits._physical_memory()
    write(v1 / "memory" / "memory.limit_in_bytes", "garbage\n")
    assert limits.memory_limit(v1, proc) is None


def test_a_notebook_says_at_its_top_when_memory_will_not_do(monkeypatch, capsys):
    gib = 2 ** 30
    assert profiles.memory_warning("fast", available=gib).startswith("this process may use 1.0 GB of memory")
    assert profiles.memory_warning("fast", available=2 * gib) is None
    full = profiles.memory_warning("full", available=4 * gib)
    assert "Ask for 8 GB" in full and "CAB420_PROFILE=fast" in full
    assert profiles.memory_warning("full", rehearsal=True, available=4 * gib) is None  # a rehearsal: small budgets
    monkeypatch.setattr(profiles, "usable_memory", lambda: gib)
    profiles.setup("00-test", "A test", profile="fast")
    assert "MEMORY  : this process may use 1.0 GB" in capsys.readouterr().out
    monkeypatch.setattr(profiles, "usable_memory", lambda: None)       # unknown (Windows): nothing said
    profiles.setup("00-test", "A test", profile="fast")
    assert "MEMORY" not in capsys.readouterr().out
