"""What `/api/v1/system/info` reports about the machine and the process.

Memory and process figures come from Linux's /proc, as on Lambda, rather than from psutil, whose
import alone added 15-60 ms to a cold start of this route. Where there is no /proc (macOS), the
figures only /proc gives are null. Nothing here starts a process.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

_MIB = 1024 * 1024


def collect_system_info() -> dict[str, Any]:
    """Python, platform, CPU, memory and process figures."""
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": _platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": _mib(_sysconf("SC_PHYS_PAGES") * _sysconf("SC_PAGE_SIZE")),
        "memory_available_mb": _mib(_available_memory()),
        "process_rss_mb": _mib(_resident_memory()),
        "process_id": os.getpid(),
        "uptime_seconds": _uptime(),
        "executable": sys.executable,
    }


def _platform() -> str:
    """What `platform.platform()` says, without the `uname -p` process it starts (20 ms)."""
    libc, version = platform.libc_ver()
    with_libc = f"-with-{libc}{version}" if libc else ""
    return f"{platform.system()}-{platform.release()}-{platform.machine()}{with_libc}"


def _mib(size: int | None) -> float | None:
    return round(size / _MIB, 1) if size else None


def _sysconf(name: str) -> int:
    try:
        return max(0, os.sysconf(name))
    except (AttributeError, OSError, ValueError):  # not POSIX, or not known here
        return 0


def _proc(path: str) -> str:
    """A /proc file's text, or "" where there is none."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _available_memory() -> int | None:
    """Memory available to new work without swapping (the kernel's MemAvailable), in bytes."""
    for line in _proc("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _resident_memory() -> int | None:
    """The resident set size of the process, in bytes."""
    statm = _proc("/proc/self/statm").split()
    return int(statm[1]) * _sysconf("SC_PAGE_SIZE") if len(statm) > 1 else None


def _uptime() -> float | None:
    """Seconds since this process started: its start in clock ticks after boot, plus boot time."""
    stat = _proc("/proc/self/stat").rpartition(")")[2].split()  # from field 3, after the name
    boot = [line.split()[1] for line in _proc("/proc/stat").splitlines() if line[:6] == "btime "]
    ticks = _sysconf("SC_CLK_TCK")
    if len(stat) < 20 or not boot or not ticks:
        return None
    started = int(boot[0]) + int(stat[19]) / ticks  # field 22, starttime
    return round(time.time() - started, 3)
