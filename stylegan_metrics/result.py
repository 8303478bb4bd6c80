"""MetricResult: the one result format of every metric, with NVIDIA-compatible JSONL lines."""

from __future__ import annotations

import json
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stylegan_core.errors import OutputError
from stylegan_core.files import append_atomically, check_writable
from stylegan_core.timefmt import format_time

MAX_LINE_BYTES = 16 * 2**20  # a longer line is no result line (ours and NVIDIA's take a few hundred bytes)


@dataclass
class MetricResult:
    metric: str                                  # e.g. 'fid50k', 'ppl_wend', 'ls'
    results: dict[str, float]                    # result name -> value
    params: dict[str, Any] = field(default_factory=dict)
    total_time: float = 0.0                      # seconds
    num_gpus: int = 0
    details: pd.DataFrame | None = None
    snapshot_pkl: str | None = None              # checkpoint path, when known
    timestamp: float = field(default_factory=time.time)

    @property
    def value(self) -> float:
        if len(self.results) != 1:
            raise ValueError(f"{self.metric} has several results ({', '.join(self.results)}); use .results")
        return next(iter(self.results.values()))

    def to_dict(self) -> dict[str, Any]:
        """The JSONL record: NVIDIA's keys plus `params`."""
        return {
            "results": dict(self.results),
            "metric": self.metric,
            "total_time": self.total_time,
            "total_time_str": format_time(self.total_time),
            "num_gpus": self.num_gpus,
            "snapshot_pkl": self.snapshot_pkl,
            "timestamp": self.timestamp,
            "params": self.params,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row: the results as columns, then metric, time and params."""
        row = dict(self.results, metric=self.metric, total_time=self.total_time, snapshot_pkl=self.snapshot_pkl)
        row.update({f"param_{k}": v for k, v in self.params.items()})
        return pd.DataFrame([row])

    def to_json_line(self) -> str:
        """The JSONL record as one line; OutputError for a value JSON cannot hold (inf, NaN: no `Infinity`)."""
        for name, v in self.results.items():
            if isinstance(v, numbers.Real) and not math.isfinite(v):
                raise OutputError(f"{self.metric}: {name} = {float(v)!r} is not a finite number, and a result line "
                                  f"holds finite numbers only (JSON has no Infinity or NaN)")
        try:
            return json.dumps(self.to_dict(), default=str, allow_nan=False) + "\n"
        except ValueError:
            raise OutputError(f"{self.metric}: a parameter is not a finite number, and a result line holds finite "
                              f"numbers only (JSON has no Infinity or NaN)") from None

    def to_jsonl(self, path: str | os.PathLike) -> Path:
        """Append one line, all or nothing, to a new or empty file or one of result lines (anything else is
        refused with nothing written; see `check_results_file`); safe beside other processes appending to it."""
        return append_results(path, [self])

    def __str__(self) -> str:
        values = ", ".join(f"{k} = {v:.4f}" for k, v in self.results.items())
        return f"{self.metric}: {values} ({format_time(self.total_time)})"


def append_results(path: str | os.PathLike, results: list[MetricResult]) -> Path:
    """Append every result's line in one all-or-nothing, locked write (`append_atomically`); the file's contents
    are checked under the lock (`results_file_problem`)."""
    data = "".join(r.to_json_line() for r in results).encode("utf-8")
    return append_atomically(path, data, check=_refuse_unless_results_file)


def check_results_file(path: str | os.PathLike) -> None:
    """Before the work: `path` can be written (`check_writable`) and may take result lines
    (`results_file_problem`); else OutputError, one line."""
    check_writable(path)
    _refuse_unless_results_file(Path(path))


def results_file_problem(path: str | os.PathLike) -> str | None:
    """Why result lines may not be appended to `path`, or None when they may: it is missing, empty, not a regular
    file (/dev/null, a pipe), or every line is a JSON object with a `results` object (ours, NVIDIA's
    metric-*.jsonl); a last line cut short by a killed writer may be unfinished when it begins `{"results"`.
    The name's suffix decides nothing. Reads one line at a time, at most MAX_LINE_BYTES each."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        number = 0
        while line := f.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES:
                return f"line {number} is longer than {MAX_LINE_BYTES // 2**20} MiB"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                if not line.endswith(b"\n") and line.startswith(b'{"results"'):
                    return None  # an unfinished last line: the next append starts a new one
                return f"line {number} is not a JSON object"
            if not isinstance(record, dict) or not isinstance(record.get("results"), dict):
                return f'line {number} is not a result line (a JSON object with "results")'
    return None


def _refuse_unless_results_file(path: Path) -> None:
    problem = results_file_problem(path)
    if problem is not None:
        raise OutputError(f"{path} is not a results file ({problem}): result lines are appended only to a new or "
                          f"empty file or one of result lines; nothing was written")
