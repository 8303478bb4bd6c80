"""`--gpus N`: start N processes of this same command as torchrun would, wait for them (they end with the
launcher, even when it is killed); where `--state-dir` defaults to, beside `--out`. The options are in options.py."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError

from .options import gpus_option

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # SIGINT reaches the workers from the terminal itself
STOP_GRACE_SECONDS = 30  # workers still running this long after the signal are killed
LAUNCHER_PIPE = "STYLEGAN_METRICS_LAUNCHER_FD"  # a worker's end of a pipe that reads end-of-file once the launcher is gone
PR_SET_PDEATHSIG = 1  # Linux prctl: a signal sent to this process when its parent ends

# Options that never change a result: a rerun with other values resumes the same state.
NOT_IN_STATE_KEY = {"out", "state_dir", "no_progress", "gpus", "device", "batch", "workers"}


def state_dir_for(state_dir: str | None, out: str | None, command: str) -> Path | None:
    """`--state-dir`, else (with `--out` a regular file or a new one) a folder beside OUT named by the command and a
    hash of its other options, so that two evaluations appending to one results file never share state."""
    if state_dir:
        return Path(state_dir)
    if not out or (os.path.exists(out) and not os.path.isfile(out)):  # none beside a device (/dev/null) or pipe
        return None
    params = click.get_current_context().params
    key = {name: _canonical(value) for name, value in params.items() if name not in NOT_IN_STATE_KEY}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    out = Path(out)
    return out.with_name(f"{out.stem}.{command}-{digest}-state")


def _canonical(value):
    """Existing files by absolute path (the same file named two ways is one run)."""
    if isinstance(value, str) and os.path.exists(value):
        return str(Path(value).resolve())
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(num: int, device: str | None) -> int:
    """Run this command line in `num` worker processes (RANK/WORLD_SIZE/... set); their exit status."""
    if device is not None and device.startswith("cuda:"):
        raise InputError(f"--gpus {num} uses cuda:0..{num - 1}; choose the GPUs with CUDA_VISIBLE_DEVICES, not --device {device}")
    if device is None or not device.startswith("cpu"):
        available = torch.cuda.device_count()
        if available < num:
            raise InputError(f"--gpus {num} needs {num} CUDA devices, {available} visible "
                             f"(use --device cpu for CPU processes)")
    argv = click.get_current_context().find_root().meta["argv"]
    port = _free_port()
    procs: list[subprocess.Popen] = []
    previous = {sig: signal.signal(sig, _stop) for sig in FORWARDED_SIGNALS}  # before any worker exists
    status, forward = 0, signal.SIGTERM
    lifeline, kept = os.pipe()  # we hold the write end (never inherited) until the workers are gone
    try:
        for rank in range(num):
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(num),
                       LOCAL_WORLD_SIZE=str(num), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       **{LAUNCHER_PIPE: str(lifeline)})
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num)))  # as torchrun does
            procs.append(subprocess.Popen([sys.executable, "-m", "stylegan_metrics_cli", *argv], env=env,
                                          pass_fds=(lifeline,)))
        os.close(lifeline)
        lifeline = -1
        while procs and not status:
            for p in list(procs):
                code = p.poll()
                if code is not None:
                    procs.remove(p)
                    status = status or code
            time.sleep(0.1)
    except _Stopped as e:  # SIGTERM / SIGHUP to us: the same to every worker, then wait for them
        status, forward = -e.signum, e.signum
    finally:
        for sig in FORWARDED_SIGNALS:  # a second signal must not interrupt the wait below
            signal.signal(sig, signal.SIG_IGN)
        for p in procs:  # one worker failed (or we were stopped): the others cannot finish alone
            if p.poll() is None:
                p.send_signal(forward)
        deadline = time.time() + STOP_GRACE_SECONDS
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for fd in (lifeline, kept):
            if fd >= 0:
                os.close(fd)
    return 128 - status if status < 0 else status  # killed by a signal: the shell's 128 + signal number


def die_with_launcher() -> None:
    """In a worker that `launch` started: end this process (SIGTERM, then SIGKILL after STOP_GRACE_SECONDS) once
    the launcher is gone, even when it was SIGKILLed, so no orphan finishes the run and writes its results
    alone. A thread waits for end-of-file on the launcher's pipe (any POSIX); on Linux the kernel also sends
    SIGTERM when the parent ends (PR_SET_PDEATHSIG)."""
    fd = os.environ.pop(LAUNCHER_PIPE, None)
    if fd is None:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the pipe still works
    threading.Thread(target=_end_at_end_of_file, args=(int(fd),), name="launcher-lifeline", daemon=True).start()


def _end_at_end_of_file(fd: int) -> None:
    try:
        while os.read(fd, 1):  # the launcher never writes: b"" once its end is closed
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE_SECONDS)
    os.kill(os.getpid(), signal.SIGKILL)


class _Stopped(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise _Stopped(signum)


def distributable(command):
    """Decorates a click command with --gpus: the parent launches workers and exits with their status."""

    @gpus_option
    @functools.wraps(command)
    def wrapper(*args, gpus: int, **kwargs):
        die_with_launcher()
        if gpus > 1 and not ranks.launched_by_torchrun():
            sys.exit(launch(gpus, kwargs.get("device")))
        return command(*args, **kwargs)

    return wrapper
