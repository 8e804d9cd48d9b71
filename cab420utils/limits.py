"""What this process may use of the machine: its cores and its memory.

``os.cpu_count()`` counts the machine's cores, not the ones a process may use: in a container started with
``docker run --cpus 4`` on a department's 64-core server it says 64, and a grader that starts one notebook
kernel per core would start 64 of them on four cores' worth of time (and 64 copies of TensorFlow in memory).
:func:`usable_cores` takes the fewest of three counts: the machine's cores, the cores this process may run on
(its affinity, e.g. ``taskset``) and its container's CPU quota (cgroup v2's ``cpu.max``, or v1's
``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, in this process's cgroup or any above it).

Memory likewise: a JupyterHub gives each student a memory limit (cgroup v2's ``memory.max``, v1's
``memory.limit_in_bytes``) well below the server's RAM, and a kernel that passes it is killed without a word
of why.  :func:`usable_memory` is the smaller of the machine's RAM and that limit, so a notebook can say at
its top when it will not fit.

Standard library only: ``tools/course.py`` loads this file before anything is installed.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The cores this process may use: the fewest of the machine's, its affinity's and its CPU quota
    (rounded up: a quota of 1.5 cores keeps two busy part of the time), and never less than 1."""
    cores = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):       # Linux; macOS and Windows have no affinity to read here
        cores = min(cores, len(os.sched_getaffinity(0)) or cores)
    quota = cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota, in cores, of this process's cgroup or any cgroup above it (the smallest), or None where
    none is set or none can be read (not Linux, no cgroups mounted, unreadable or malformed files)."""
    return _smallest_limit(cgroup_root, proc_cgroup, "cpu", _v2_quota, _v1_quota)


def usable_memory(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The bytes of memory this process may use: the smaller of the machine's RAM and its cgroup's memory
    limit (or any cgroup's above it); None where neither can be read (e.g. on Windows)."""
    sizes = [size for size in (_physical_memory(), memory_limit(cgroup_root, proc_cgroup)) if size is not None]
    return min(sizes) if sizes else None


def memory_limit(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The memory limit, in bytes, of this process's cgroup or any above it (the smallest), or None where none
    is set or none can be read.  cgroup v1 writes "no limit" as a huge number, which stays above any RAM."""
    limit = _smallest_limit(cgroup_root, proc_cgroup, "memory", _v2_memory, _v1_memory)
    return None if limit is None else int(limit)


def _smallest_limit(cgroup_root, proc_cgroup, controller: str, read_v2, read_v1) -> float | None:
    """The smallest value ``read_v2`` (cgroup v2) or ``read_v1`` (v1's ``controller``) finds in this process's
    cgroups and the cgroups above them; None where none is set or readable."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    values = []
    for line in lines:                                  # "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1)
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            bases, read = (Path(cgroup_root), Path(cgroup_root) / "unified"), read_v2
        elif controller in controllers.split(","):
            bases, read = (Path(cgroup_root) / controllers, Path(cgroup_root) / controller), read_v1
        else:
            continue
        for base in bases:
            values += [v for folder in _folders_up(base, path) if (v := read(folder)) is not None]
    return min(values) if values else None


def _folders_up(base: Path, path: str) -> list[Path]:
    """``base/path`` and each folder above it up to ``base``, those that exist.  Inside a container the path
    the kernel names is often the host's, absent here: then the container's own root (``base``) still counts."""
    folder, folders = base / path.strip("/"), []
    while True:
        if folder.is_dir():
            folders.append(folder)
        if folder == base or base not in folder.parents:
            return folders
        folder = folder.parent


def _v2_quota(folder: Path) -> float | None:
    """cgroup v2's ``cpu.max``: "max 100000" (no limit) or "QUOTA PERIOD" in microseconds."""
    try:
        quota, period = (folder / "cpu.max").read_text().split()
        return _ratio(quota, period)
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    """cgroup v1's ``cpu.cfs_quota_us`` (-1: no limit) over ``cpu.cfs_period_us``."""
    try:
        return _ratio((folder / "cpu.cfs_quota_us").read_text().strip(),
                      (folder / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    if quota == "max" or int(quota) <= 0 or int(period) <= 0:
        return None
    return int(quota) / int(period)


def _v2_memory(folder: Path) -> int | None:
    """cgroup v2's ``memory.max``: "max" (no limit) or bytes."""
    return _bytes(folder / "memory.max")


def _v1_memory(folder: Path) -> int | None:
    """cgroup v1's ``memory.limit_in_bytes`` (no limit: a number near 2**63)."""
    return _bytes(folder / "memory.limit_in_bytes")


def _bytes(file: Path) -> int | None:
    try:
        text = file.read_text().strip()
        return None if text == "max" or int(text) <= 0 else int(text)
    except (OSError, ValueError):
        return None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):      # Windows has no sysconf
        return None
