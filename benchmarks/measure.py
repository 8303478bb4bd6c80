"""Measuring a benchmark worker: the machine's and the process's CPU seconds (the share other jobs took), and
refusing downloads and internet connections, so that every file a run uses is the local one."""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have spent (non-idle) since boot, from /proc/stat; None elsewhere."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def forbid_downloads() -> None:
    import torch.hub

    def refuse(url, *args, **kwargs):
        raise RuntimeError(f"benchmark worker refused a download of {url}: the weights file should be cached")

    torch.hub.download_url_to_file = refuse


def refuse_internet() -> None:
    """Any TCP connection (urllib, requests, torch.hub) raises: nothing may be downloaded silently."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"benchmark worker refused a connection to {address}: everything must be local")
        return connect(sock, address)

    socket.socket.connect = guarded
    forbid_downloads()
