"""Feature statistics: float64 running sums (memory independent of N) and saved reference statistics."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write

COVARIANCE_KINDS = ("unbiased", "biased")


class FeatureStats:
    """Accumulates sum x, sum x x^T and n in float64; gives the mean and covariance.

    Rows are added to the sums in fixed groups of GROUP_ROWS consecutive samples, so the sums (and every number
    derived from them) are bit-identical whatever the batch sizes the rows arrive in.
    """

    GROUP_ROWS = 64  # rows per summation step

    def __init__(self, num_features: int, device: str | torch.device = "cpu"):
        self.num_features = num_features
        self.n = 0  # rows added to the sums; rows still pending are counted after a flush
        self.sum = torch.zeros(num_features, dtype=torch.float64, device=device)
        self.sum_outer = torch.zeros(num_features, num_features, dtype=torch.float64, device=device)
        self._pending: list[torch.Tensor] = []

    def update(self, features: torch.Tensor) -> None:
        """Add a batch [N, num_features]; NaN or Inf is an InputError, never a silent wrong number."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise InputError(f"features must have shape [N, {self.num_features}], got {list(features.shape)}")
        x = features.to(device=self.sum.device, dtype=torch.float64)
        if not torch.isfinite(x).all():
            raise InputError("the feature network produced NaN or Inf values")
        self._pending.append(x)
        if sum(p.shape[0] for p in self._pending) >= self.GROUP_ROWS:
            rows = torch.cat(self._pending)
            full = rows.shape[0] // self.GROUP_ROWS * self.GROUP_ROWS
            for group in rows[:full].split(self.GROUP_ROWS):
                self._add(group)
            self._pending = [rows[full:]] if full < rows.shape[0] else []

    def _add(self, group: torch.Tensor) -> None:
        self.sum += group.sum(dim=0)
        self.sum_outer += group.T @ group
        self.n += group.shape[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        self._flush()
        return {"n": np.int64(self.n), "sum": self.sum.cpu().numpy(), "sum_outer": self.sum_outer.cpu().numpy()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "FeatureStats":
        stats = cls(int(arrays["sum"].shape[0]))
        stats.n = int(arrays["n"])
        stats.sum = torch.from_numpy(np.asarray(arrays["sum"], np.float64))
        stats.sum_outer = torch.from_numpy(np.asarray(arrays["sum_outer"], np.float64))
        return stats

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Adds `other`'s rows (both flushed); returns self."""
        if other.num_features != self.num_features:
            raise InputError(f"cannot merge statistics of {other.num_features} and {self.num_features} features")
        self._flush()
        other._flush()
        self.sum += other.sum.to(self.sum.device)
        self.sum_outer += other.sum_outer.to(self.sum.device)
        self.n += other.n
        return self

    def _flush(self) -> None:
        if self._pending:
            self._add(torch.cat(self._pending))
            self._pending = []

    def mean(self) -> np.ndarray:
        self._flush()
        return (self.sum / max(self.n, 1)).cpu().numpy()

    def covariance(self, kind: str = "unbiased") -> np.ndarray:
        """Unbiased (N - 1) by default; 'biased' divides by N like NVIDIA stylegan2-ada."""
        if kind not in COVARIANCE_KINDS:
            raise ValueError(f"cov must be one of {COVARIANCE_KINDS}, not {kind!r}")
        self._flush()
        if self.n < 2:
            raise InputError(f"need at least 2 samples for a covariance, got {self.n}")
        mu = self.sum / self.n
        scatter = self.sum_outer - self.n * torch.outer(mu, mu)
        return (scatter / (self.n - 1 if kind == "unbiased" else self.n)).cpu().numpy()


@dataclass
class ReferenceStats:
    """Mean and covariance of features of a dataset; `.npz` readable by pytorch-fid and clean-fid."""

    mu: np.ndarray       # [D]
    sigma: np.ndarray    # [D, D], unbiased (N - 1)
    n: int
    features: str        # feature network name
    fingerprint: str = ""  # the network's weights fingerprint ("" when unknown, e.g. a pytorch-fid file)

    @classmethod
    def from_accumulator(cls, acc: FeatureStats, features: str, fingerprint: str = "") -> "ReferenceStats":
        return cls(mu=acc.mean(), sigma=acc.covariance("unbiased"), n=acc.n, features=features,
                   fingerprint=fingerprint)

    def covariance(self, kind: str = "unbiased") -> np.ndarray:
        if kind not in COVARIANCE_KINDS:
            raise ValueError(f"cov must be one of {COVARIANCE_KINDS}, not {kind!r}")
        return self.sigma if kind == "unbiased" else self.sigma * ((self.n - 1) / self.n)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file, then rename)."""
        with atomic_write(path) as f:
            np.savez(f, mu=self.mu, sigma=self.sigma, n=np.int64(self.n), features=np.str_(self.features),
                     fingerprint=np.str_(self.fingerprint))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceStats":
        """Read our files and pytorch-fid / clean-fid ones (mu, sigma only); validates shapes and values."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such statistics file")
        try:
            with np.load(path, allow_pickle=False) as data:
                mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
                n = int(data["n"]) if "n" in data else 0
                features = str(data["features"]) if "features" in data else "inception-v3"
                fingerprint = str(data["fingerprint"]) if "fingerprint" in data else ""
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: not a statistics .npz with 'mu' and 'sigma' ({type(e).__name__})") from None
        d = mu.shape[0] if mu.ndim == 1 else -1
        if d < 1 or sigma.shape != (d, d):
            raise InputError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise InputError(f"{path}: statistics contain NaN or Inf")
        return cls(mu=mu, sigma=sigma, n=n, features=features, fingerprint=fingerprint)
