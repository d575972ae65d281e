"""Watching a benchmark's child process: its peak memory, sampled, and a time limit."""

from __future__ import annotations

import subprocess
import time

MB = 1024 * 1024


def watch(proc: subprocess.Popen, timeout: float, interval: float = 0.1) -> tuple[bool, float]:
    """Wait for ``proc``, sampling its RSS every ``interval`` s; kill it after ``timeout`` s.
    Returns (finished in time, sampled peak RSS in MB)."""
    import psutil

    child = psutil.Process(proc.pid)
    t0, sampled = time.perf_counter(), 0.0
    while proc.poll() is None:
        try:
            sampled = max(sampled, child.memory_info().rss / MB)
        except psutil.Error:
            pass
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            proc.wait()
            return False, sampled
        time.sleep(interval)
    return True, sampled
