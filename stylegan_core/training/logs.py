"""What a run tells its user, as NVIDIA's train.py: a status line per tick on stdout and in log.txt, one
stats.jsonl record per tick, TensorBoard events; resumed runs continue the same files without repeats. Without a
progress bar, a progress line on stdout whenever STATUS_SEC passed without a line."""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from stylegan_core.files import atomic_write
from stylegan_core.timefmt import format_time
from stylegan_core.training.snapshots import snapshot_images
from stylegan_core.training.training_stats import scalar

STATS_FILE = "stats.jsonl"
LOG_FILE = "log.txt"
METRIC_FILES = "metric-*.jsonl"
STATUS_SEC = 30.0  # without a progress bar: longest time without a line on stdout (a progress line fills it)
# Loss columns of the status line: label -> stats.jsonl key; shown when the term is active in the run.
LOSS_COLUMNS = {"G": "Loss/G/loss", "D": "Loss/D/loss", "r1": "Loss/r1_penalty", "pl": "Loss/pl_penalty"}


def peak_cpu_mem_gb() -> float:
    """This process's peak resident memory in GiB: VmHWM on Linux, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def cpu_mem_gb() -> float | None:
    """Current resident memory in GiB (NVIDIA's Resources/cpu_mem_gb); None where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Tick:
    """One tick of training: when and at which image count it began, and its non-training time."""

    index: int                  # Tick number, counted over the whole run (a resumed run goes on counting).
    start_images: int           # images_seen at its start.
    start_time: float           # time.time() at its start.
    one_batch: bool = False     # The first tick of a start is one batch, so the first status line comes quickly.
    maintenance: float = field(default=0.0)  # Seconds spent on snapshots, metrics and logs during it.

    def is_over(self, images_seen: int, tick_kimg: float) -> bool:
        return self.one_batch or images_seen >= self.start_images + tick_kimg * 1000

    def record(self, images_seen: int, now: float, total_sec: float, device: torch.device) -> dict:
        """The tick's Progress/Timing/Resources entries, NVIDIA's keys where they mean the same."""
        images = images_seen - self.start_images
        sec = max(now - self.start_time - self.maintenance, 0.0)
        stats = {
            "Progress/tick": scalar(self.index),
            "Progress/kimg": scalar(images_seen / 1e3),
            "Timing/total_sec": scalar(total_sec),
            "Timing/sec_per_tick": scalar(sec),
            "Timing/sec_per_kimg": scalar(sec / images * 1e3 if images else 0.0),
            "Timing/img_per_sec": scalar(images / sec if sec > 0 else 0.0),
            "Timing/maintenance_sec": scalar(self.maintenance),
            "Timing/total_hours": scalar(total_sec / 3600),
            "Timing/total_days": scalar(total_sec / 86400),
            "Resources/peak_cpu_mem_gb": scalar(peak_cpu_mem_gb()),
        }
        if (rss := cpu_mem_gb()) is not None:
            stats["Resources/cpu_mem_gb"] = scalar(rss)
        if device.type == "cuda":  # peak since the previous tick, as NVIDIA's
            stats["Resources/peak_gpu_mem_gb"] = scalar(torch.cuda.max_memory_allocated(device) / 2**30)
            torch.cuda.reset_peak_memory_stats(device)
        return stats


def status_line(stats: dict, losses: list[str]) -> str:
    """One tick as a line: NVIDIA's fields (lod and minibatch in progressive runs), img/s, the active loss terms
    (`losses`: LOSS_COLUMNS labels; '-' when a lazy term did not run this tick), |w_avg|, peak CPU memory and peak
    GPU memory (on a GPU)."""
    mean = {k: v["mean"] for k, v in stats.items()}
    fields = [
        f"tick {int(mean['Progress/tick']):<5d}",
        f"kimg {mean['Progress/kimg']:<8.3f}",
        *([f"lod {mean['Progress/lod']:<5.2f}", f"minibatch {int(mean['Progress/minibatch']):<4d}"]
          if "Progress/lod" in mean else []),
        f"time {format_time(mean['Timing/total_sec']):<12s}",
        f"sec/tick {mean['Timing/sec_per_tick']:<7.1f}",
        f"sec/kimg {mean['Timing/sec_per_kimg']:<7.2f}",
        f"img/s {mean['Timing/img_per_sec']:<7.1f}",
    ]
    for label in losses:
        key = LOSS_COLUMNS[label]
        fields.append(f"{label} {mean[key]:<8.4f}" if key in mean else f"{label} {'-':<8s}")
    fields.append(f"w_avg {mean['Progress/w_avg_norm']:<7.3f}")
    fields.append(f"cpumem {mean['Resources/peak_cpu_mem_gb']:<6.2f}")
    if "Resources/peak_gpu_mem_gb" in mean:
        fields.append(f"gpumem {mean['Resources/peak_gpu_mem_gb']:<6.2f}")
    return " ".join(fields).rstrip()


def _read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """(records, damaged): the complete JSON lines of `path`; damaged when a line was cut short or unreadable."""
    records, damaged = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        try:
            if not line.endswith("\n"):
                raise ValueError("cut short")
            records.append(json.loads(line))
        except ValueError:
            damaged = True
    return records, damaged


def _keep_lines(path: Path, keep) -> list[dict]:
    """Drop the records of `path` that `keep(record)` rejects, and any damaged line; rewrite it atomically."""
    if not path.is_file():
        return []
    records, damaged = _read_jsonl(path)
    kept = [r for r in records if keep(r)]
    if damaged or len(kept) != len(records):
        with atomic_write(path) as f:
            f.write("".join(json.dumps(r) + "\n" for r in kept).encode())
    return kept


def _append_line(path: Path, line: str) -> None:
    """Append one line with a single write on an O_APPEND descriptor, then fsync: a crash may lose the line,
    never leave half of it (a cut-short line is dropped when the run starts again)."""
    data = line.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        written = os.write(fd, data)
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


class TrainingLog:
    """Status lines (stdout and log.txt), stats.jsonl and TensorBoard events of a run; silent where not `enabled`
    (ranks other than 0). Opening it continues the files of a run resumed at `images_seen`: records of later
    ticks and snapshots (left by an interrupted run) are dropped, tick numbers and total time go on."""

    def __init__(
        self,
        run_dir: Path,              # The run folder.
        *,
        images_seen: int,           # Where the run (re)starts.
        enabled: bool = True,       # False: write nothing (every rank but 0).
        tensorboard: bool = False,  # Also write TensorBoard events (when the tensorboard package is installed).
    ):
        self.run_dir, self.enabled = Path(run_dir), enabled
        self.next_tick, self.prior_sec = 0, 0.0
        self.echoed = 0  # lines printed to stdout so far
        self._log = self._tensorboard = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ticks = _keep_lines(self.run_dir / STATS_FILE, lambda r: _images(r) <= images_seen)
        if ticks:
            self.next_tick = int(ticks[-1]["Progress/tick"]["mean"]) + 1
            self.prior_sec = float(ticks[-1]["Timing/total_sec"]["mean"])
        for path in sorted(self.run_dir.glob(METRIC_FILES)):  # every later snapshot name is new (snapshots.py)
            _keep_lines(path, lambda r: _snapshot_images(r) <= images_seen)
        self._log = open(self.run_dir / LOG_FILE, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                self.print(f"tensorboard is not installed ({e}); no events written")
            else:
                self._tensorboard = SummaryWriter(str(self.run_dir))

    def print(self, line: str, *, echo: bool = True) -> None:
        """A line in log.txt and (with `echo`) on stdout, above a progress bar if there is one."""
        if not self.enabled:
            return
        if echo:
            self.echo(line)
        self._log.write(line + "\n")
        self._log.flush()

    def echo(self, line: str) -> None:
        """A line on stdout only (above a progress bar if there is one)."""
        if self.enabled:
            tqdm.write(line, file=sys.stdout)
            self.echoed += 1

    def record(self, stats: dict, step_kimg: int) -> None:
        """One tick: its stats.jsonl line (the stats plus a timestamp) and TensorBoard scalars at step `step_kimg`."""
        if not self.enabled:
            return
        timestamp = time.time()
        _append_line(self.run_dir / STATS_FILE, json.dumps(dict(stats, timestamp=timestamp)) + "\n")
        if self._tensorboard is not None:
            for name, value in stats.items():
                self._tensorboard.add_scalar(name, value["mean"], global_step=step_kimg, walltime=timestamp)
            self._tensorboard.flush()

    def metrics(self, values: dict[str, float], step_kimg: int) -> None:
        """Metric results of a snapshot as TensorBoard scalars Metrics/<name> (the jsonl lines are the hook's)."""
        if self.enabled and self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(f"Metrics/{name}", value, global_step=step_kimg)
            self._tensorboard.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _images(record: dict) -> float:
    """Images seen at a stats.jsonl record (math.inf when it has no readable kimg: dropped on resume)."""
    try:
        return round(float(record["Progress/kimg"]["mean"]) * 1000)
    except (KeyError, TypeError, ValueError):
        return math.inf


def _snapshot_images(record: dict) -> int:
    """Images shown at a metric line's snapshot, from its name (snapshots.snapshot_images); -1 (kept) when it
    names none."""
    images = snapshot_images(str(record.get("snapshot_pkl") or ""))
    return -1 if images is None else images


@dataclass
class Heartbeat:
    """Progress lines for a run without a progress bar (off a terminal, or --no-progress): whenever `interval`
    seconds of `now` (a monotonic clock) pass without a line on stdout, one with the kimg, rate and ETA."""

    interval: float      # seconds
    start_images: int    # images shown when this start began
    total_images: int    # images shown at the end of the run
    start: float         # clock at this start
    last: float = field(init=False)
    seen: int = field(default=0, init=False)  # stdout lines counted when `last` was set

    def __post_init__(self):
        self.last = self.start

    def beat(self, log: "TrainingLog", images_seen: int, now: float) -> None:
        """Call after every step: print a progress line when one is due (any other line resets the wait)."""
        if log.echoed != self.seen:
            self.seen, self.last = log.echoed, now
        elif now - self.last >= self.interval:
            log.echo(progress_line(images_seen, self.total_images, images_seen - self.start_images, now - self.start))
            self.seen, self.last = log.echoed, now


def progress_line(images_seen: int, total_images: int, images_done: int, seconds: float) -> str:
    """'progress: kimg 1.504 of 4, 312.4 img/s, ETA 8s': `images_done` in `seconds` since this start give the rate,
    the rate the time left."""
    rate = images_done / seconds if seconds > 0 else 0.0
    left = max(total_images - images_seen, 0)
    eta = format_time(left / rate) if rate > 0 else "unknown"
    return f"progress: kimg {images_seen / 1e3:.3f} of {total_images / 1e3:g}, {rate:.1f} img/s, ETA {eta}"
