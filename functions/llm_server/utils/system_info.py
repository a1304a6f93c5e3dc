"""What `/api/v1/system/info` reports about the machine and the process."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

_MIB = 1024 * 1024


def collect_system_info() -> dict[str, Any]:
    """Python, platform, CPU, memory and process figures (psutil is imported only here)."""
    import psutil

    memory = psutil.virtual_memory()
    process = psutil.Process()
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": round(memory.total / _MIB, 1),
        "memory_available_mb": round(memory.available / _MIB, 1),
        "process_rss_mb": round(process.memory_info().rss / _MIB, 1),
        "process_id": process.pid,
        "uptime_seconds": round(time.time() - process.create_time(), 3),
        "executable": sys.executable,
    }
