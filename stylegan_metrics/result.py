"""MetricResult: the one result format of every metric, with NVIDIA-compatible JSONL lines."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stylegan_core.files import append_atomically

from stylegan_core.timefmt import format_time


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
        return json.dumps(self.to_dict(), default=str) + "\n"

    def to_jsonl(self, path: str | os.PathLike) -> Path:
        """Append one line, all or nothing: a failed write (a full disk) leaves the file as it was."""
        return append_atomically(path, self.to_json_line().encode("utf-8"))

    def __str__(self) -> str:
        values = ", ".join(f"{k} = {v:.4f}" for k, v in self.results.items())
        return f"{self.metric}: {values} ({format_time(self.total_time)})"
