"""keep_freed_memory: a freed 64 MiB buffer is reused by the next allocation instead of faulted in again."""

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from stylegan_core.allocator import keep_freed_memory
on = keep_freed_memory()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, every page touched
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(on, faults[-1])
"""


def probe(env_value: str | None) -> tuple[bool, int]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "STYLEGAN_METRICS_MALLOPT"}
    if env_value is not None:
        env["STYLEGAN_METRICS_MALLOPT"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    on, faults = out.stdout.split()
    return on == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_memory_is_reused_and_can_be_switched_off():
    pages = 64 * 2**20 // 4096
    on, faults = probe(None)
    assert on and faults < pages // 10
    off, faults_off = probe("0")
    assert not off and faults_off > pages // 2  # glibc's default: a fresh mmap, every page faulted again
