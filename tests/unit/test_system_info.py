"""`/api/v1/system/info`'s machine and process figures, read from /proc, agree with psutil's."""

import platform
import sys
import time

import psutil
import pytest

from llm_server.utils.system_info import collect_system_info

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the figures come from /proc")
MIB = 1024 * 1024


def test_the_figures_agree_with_psutil():
    info = collect_system_info()
    process, memory = psutil.Process(), psutil.virtual_memory()
    assert info["platform"] == platform.platform()
    assert info["process_id"] == process.pid
    assert info["memory_total_mb"] == round(memory.total / MIB, 1)
    assert info["memory_available_mb"] == pytest.approx(memory.available / MIB, rel=0.1)
    assert info["process_rss_mb"] == pytest.approx(process.memory_info().rss / MIB, rel=0.1)
    assert info["uptime_seconds"] == pytest.approx(time.time() - process.create_time(), abs=0.1)
