"""Per-process and per-node CPU and memory from psutil, sampled on demand."""

from __future__ import annotations

import os
from typing import Any

import psutil


class LoadSampler:
    """Keeps psutil handles per pid so CPU percentages are measured between samples."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self.peak_rss: dict[int, int] = {}

    def sample(self, pid: int) -> dict[str, Any]:
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = psutil.Process(pid)
                proc.cpu_percent(None)
                self._procs[pid] = proc
            cpu = proc.cpu_percent(None)
            rss = proc.memory_info().rss
        except psutil.Error:
            self._procs.pop(pid, None)
            return {"cpu": 0.0, "rss": 0, "peak_rss": self.peak_rss.get(pid, 0)}
        peak = max(rss, self.peak_rss.get(pid, 0))
        self.peak_rss[pid] = peak
        return {"cpu": cpu, "rss": rss, "peak_rss": peak}

    def node(self) -> dict[str, Any]:
        """Cores, the cores in use since the last call (all processes of the node), memory
        and load average."""
        cores = psutil.cpu_count() or 1
        mem = psutil.virtual_memory()
        return {
            "cores": cores,
            "cpu_used": psutil.cpu_percent(None) / 100.0 * cores,
            "mem_used": mem.total - mem.available,
            "mem_total": mem.total,
            "loadavg": os.getloadavg()[0],
        }

    def forget(self, pid: int) -> None:
        self._procs.pop(pid, None)
