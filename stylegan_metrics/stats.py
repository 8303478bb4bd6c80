"""Feature statistics: float64 running sums (memory independent of N) and saved reference statistics."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan_core.errors import InputError, OutputError
from stylegan_core.files import atomic_write
from stylegan_core.limits import LimitError, check_array_sizes, check_npz_members, npz_headers

from stylegan_metrics.networks.dinov2 import ARCHS as DINOV2_ARCHS
from stylegan_metrics.networks.vgg16_fc2 import FEATURES as VGG16_FC2_WIDTH

COVARIANCE_KINDS = ("unbiased", "biased")
MAX_FEATURES = 8192           # feature dimensions of reference statistics (Inception-v3: 2048)
SYMMETRY_TOLERANCE = 1e-5     # |sigma - sigma^T| relative to the largest entry (float32 files round)
PSD_TOLERANCE = 1e-6          # the lowest eigenvalue may be this far below 0, relative to D x the largest entry
MAX_MAGNITUDE = 1e100         # |mu|, |sigma| entries: beyond this, float64 products in the Fréchet distance overflow
MAX_FIELD_BYTES = 2**16       # one single-value field of a statistics file (n, features, source, digest, ...)
FEATURE_WIDTHS = {"inception-v3": 2048, "vgg16-fc2": VGG16_FC2_WIDTH,  # D of the networks statistics files name
                  **{f"dinov2-{arch}{suffix}": kwargs["width"] for arch, kwargs in DINOV2_ARCHS.items()
                     for suffix in ("", "-pil")}}
STATISTICS_SUFFIXES = (".npz", ".pkl")  # our (and pytorch-fid's, EDM's) .npz; EDM2's .pkl (edm2_stats)


class FeatureStats:
    """Accumulates sum x, sum x x^T and n in float64; gives the mean and covariance.

    Rows are added to the sums in fixed groups of GROUP_ROWS consecutive samples, so the sums (and every number
    derived from them) are bit-identical whatever the batch sizes the rows arrive in. The sums live on `device` (the
    feature network's): on a GPU nothing is read back until the statistics are (to_arrays, mean, covariance).
    """

    GROUP_ROWS = 64  # rows per summation step

    def __init__(self, num_features: int, device: str | torch.device = "cpu"):
        self.num_features = num_features
        self.n = 0  # rows added to the sums; rows still pending are counted after a flush
        self.sum = torch.zeros(num_features, dtype=torch.float64, device=device)
        self.sum_outer = torch.zeros(num_features, num_features, dtype=torch.float64, device=device)
        self._pending: list[torch.Tensor] = []
        self._finite: torch.Tensor | None = None  # off the CPU: whether every row so far was finite, not yet read

    def update(self, features: torch.Tensor) -> None:
        """Add a batch [N, num_features]; NaN or Inf is an InputError, never a silent wrong number (on the CPU at
        once; on a GPU when the statistics are next read, so that no batch waits for the device)."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise InputError(f"features must have shape [N, {self.num_features}], got {list(features.shape)}")
        x = features.to(device=self.sum.device, dtype=torch.float64)
        finite = torch.isfinite(x).all()
        if x.device.type == "cpu":
            self._raise_unless(finite)
        else:
            self._finite = finite if self._finite is None else self._finite & finite
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

    @staticmethod
    def _raise_unless(finite: torch.Tensor) -> None:
        if not bool(finite):
            raise InputError("the feature network produced NaN or Inf values")

    def _flush(self) -> None:
        if self._finite is not None:
            finite, self._finite = self._finite, None
            self._raise_unless(finite)
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
    n: int               # images the statistics were computed from; 0 when the file does not say (pytorch-fid)
    features: str        # feature network name
    fingerprint: str = ""  # the network's weights fingerprint ("" when unknown, e.g. a pytorch-fid file)
    resolution: int = 0    # side of the (square) images in pixels, as decoded; 0 when the file does not say
    source: str = ""       # the folder or zip the images came from ("" when unknown)
    resize: str = ""       # how the feature network brought them to its input size ("" when unknown)

    DESCRIPTION = ("resolution", "source", "resize")  # optional fields: absent from older files and other tools'

    @classmethod
    def from_accumulator(cls, acc: FeatureStats, features: str, fingerprint: str = "", *, resolution: int = 0,
                         source: str = "", resize: str = "") -> "ReferenceStats":
        return cls(mu=acc.mean(), sigma=acc.covariance("unbiased"), n=acc.n, features=features,
                   fingerprint=fingerprint, resolution=resolution, source=source, resize=resize)

    def described(self) -> bool:
        """Whether the file says where its images came from (resolution, source or resize rule)."""
        return bool(self.resolution or self.source or self.resize)

    def covariance(self, kind: str = "unbiased") -> np.ndarray:
        if kind not in COVARIANCE_KINDS:
            raise ValueError(f"cov must be one of {COVARIANCE_KINDS}, not {kind!r}")
        if kind == "unbiased":
            return self.sigma
        if self.n < 2:
            raise InputError("these reference statistics do not record their number of images (n), which the "
                             "biased (1/N) covariance needs to rescale their (N - 1) sigma; use the unbiased "
                             "covariance (--cov unbiased; in metric names the suffix _unbiased, fid50k_full_unbiased) "
                             "or recompute them with the stats command")
        return self.sigma * ((self.n - 1) / self.n)

    def digest(self) -> str:
        """SHA-256 of the contents (mu, sigma, n, features, fingerprint, and resolution, source and resize when any
        is set), stored in our files and checked on load. Files without the description keep the digest they had
        before it existed; a file that has one cannot lose or change it unnoticed."""
        h = hashlib.sha256()
        for a in (self.mu, self.sigma):
            a = np.ascontiguousarray(a, np.float64)
            h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
            h.update(a.tobytes())
        fields = [int(self.n), self.features, self.fingerprint]
        if self.described():
            fields += [int(self.resolution), self.source, self.resize]
        h.update(json.dumps(fields).encode())
        return h.hexdigest()

    def check(self, where: str = "reference statistics") -> "ReferenceStats":
        """InputError unless mu [D] and sigma [D, D] are real, finite and within MAX_MAGNITUDE, sigma symmetric and
        positive semi-definite (within rounding), D within MAX_FEATURES, and n (when recorded) at least 2. Returns
        self."""
        mu, sigma = np.asarray(self.mu), np.asarray(self.sigma)
        for name, a in (("mu", mu), ("sigma", sigma)):
            if a.dtype.kind not in "fiu":
                raise InputError(f"{where}: {name} is of type {a.dtype}, not real numbers")
        if mu.ndim != 1 or not 1 <= mu.shape[0] <= MAX_FEATURES:
            raise InputError(f"{where}: mu has shape {mu.shape}, not [D] with 1 <= D <= {MAX_FEATURES}")
        d = mu.shape[0]
        if sigma.shape != (d, d):
            raise InputError(f"{where}: sigma has shape {sigma.shape}, but mu has {d} features")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise InputError(f"{where}: the statistics contain NaN or Inf")
        largest = max(float(np.abs(mu).max()), float(np.abs(sigma).max()))
        if largest > MAX_MAGNITUDE:
            raise InputError(f"{where}: the statistics hold values up to {largest:.3g}, beyond {MAX_MAGNITUDE:.0e}; "
                             f"the Fréchet distance of such numbers overflows float64 (not features of a network)")
        sigma = sigma.astype(np.float64)
        scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
        asymmetry = float(np.abs(sigma - sigma.T).max()) / scale
        if asymmetry > SYMMETRY_TOLERANCE:
            raise InputError(f"{where}: sigma is not symmetric (largest difference {asymmetry:.2g} of its largest "
                             f"entry); not a covariance matrix")
        if not _positive_semidefinite(sigma, PSD_TOLERANCE * scale * d):
            raise InputError(f"{where}: sigma has a negative eigenvalue; a covariance matrix is positive "
                             f"semi-definite")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n == 1 or self.n < 0:
            raise InputError(f"{where}: n = {self.n!r}; the statistics of fewer than 2 images have no covariance")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, (int, np.integer)) \
                or self.resolution < 0:
            raise InputError(f"{where}: resolution = {self.resolution!r} is not a size in pixels")
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file, then rename), with a digest of the contents; the name must end in .npz."""
        if Path(path).suffix.lower() != ".npz":
            raise InputError(f"{path}: statistics files end in .npz (refusing to write another kind of file)")
        with atomic_write(path) as f:
            np.savez(f, mu=self.mu, sigma=self.sigma, n=np.int64(self.n), features=np.str_(self.features),
                     fingerprint=np.str_(self.fingerprint), resolution=np.int64(self.resolution),
                     source=np.str_(self.source), resize=np.str_(self.resize), digest=np.str_(self.digest()))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, *, require_digest: bool = False) -> "ReferenceStats":
        """Read our files (older ones without resolution, source and resize too) and pytorch-fid / clean-fid ones
        (mu, sigma only: n unknown). Array shapes are read from
        the headers and checked before anything is loaded; the values are checked (`check`); a stored digest must
        match (`require_digest`: and be present, as in our cache)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such statistics file")
        try:
            headers = npz_headers(path, budget=False)  # the headers against each other first, then the budget
            if "mu" not in headers or "sigma" not in headers:
                raise KeyError("mu" if "mu" not in headers else "sigma")
            (mu_shape, _), (sigma_shape, _) = headers["mu"], headers["sigma"]
            d = mu_shape[0] if len(mu_shape) == 1 else -1
            if not 1 <= d <= MAX_FEATURES or sigma_shape != (d, d):
                raise InputError(f"{path}: mu {mu_shape} and sigma {sigma_shape} are not [D] and [D, D] with "
                                 f"1 <= D <= {MAX_FEATURES}")
            fields = {name: headers[name] for name in ("n", "features", "fingerprint", "digest", *cls.DESCRIPTION)
                      if name in headers}
            for name, (shape, _) in fields.items():
                if shape != ():
                    raise InputError(f"{path}: {name} is an array of shape {shape}, not a single value")
            check_array_sizes(fields, MAX_FIELD_BYTES)  # e.g. a 'features' string that declares gigabytes
            with np.load(path, allow_pickle=False) as data:
                features = str(data["features"]) if "features" in headers else "inception-v3"  # a small field
                check_named_width(str(path), features, d)  # before mu and sigma are read
                check_npz_members(path)  # deflated members that would inflate far beyond the file
                check_array_sizes(headers)
                mu, sigma = np.array(data["mu"]), np.array(data["sigma"])
                n = data["n"].item() if "n" in headers else 0
                fingerprint = str(data["fingerprint"]) if "fingerprint" in headers else ""
                digest = str(data["digest"]) if "digest" in headers else None
                resolution = data["resolution"].item() if "resolution" in headers else 0
                source = str(data["source"]) if "source" in headers else ""
                resize = str(data["resize"]) if "resize" in headers else ""
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, LimitError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"{path}: not a statistics .npz with 'mu' and 'sigma' ({type(e).__name__}"
                             f"{f': {e}' if isinstance(e, (LimitError, zipfile.BadZipFile)) else ''})") from None
        if not isinstance(n, int):
            raise InputError(f"{path}: n = {n!r} is not a whole number of images")
        stats = cls(mu=mu, sigma=sigma, n=n, features=features, fingerprint=fingerprint, resolution=resolution,
                    source=source, resize=resize).check(str(path))
        stats.mu, stats.sigma = mu.astype(np.float64), sigma.astype(np.float64)
        if digest is None and require_digest:
            raise InputError(f"{path}: no digest of its contents; not written by this tool")
        if digest is not None and digest != stats.digest():
            raise InputError(f"{path}: its contents do not match their digest (the file was changed after it was "
                             f"written)")
        return stats


def check_replaceable(path: str | os.PathLike) -> None:
    """OutputError when `path` is an existing file that is not statistics (a .npz holding mu and sigma): a user's
    other arrays named *.npz are never replaced. The values are not read: damaged statistics may be rewritten."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        names = set()
    if not {"mu.npy", "sigma.npy"} <= names:
        raise OutputError(f"{path}: exists and is not statistics (no mu and sigma); refusing to replace it: remove it "
                          f"or name another file")


def check_named_width(where: str, features: str, d: int) -> None:
    """InputError when statistics named after a network of FEATURE_WIDTHS (a file without a name: inception-v3, as
    pytorch-fid writes them) have another number of features."""
    width = FEATURE_WIDTHS.get(features)
    if width is not None and d != width:
        raise InputError(f"{where}: mu has {d:,} features but {features} features have {width:,}; not statistics of "
                         f"that network")


def _positive_semidefinite(sigma: np.ndarray, tolerance: float) -> bool:
    """No eigenvalue below -tolerance (roughly): a Cholesky factorisation of sigma + 2 tolerance I exists, which
    is far cheaper than the eigenvalues."""
    s = torch.from_numpy((sigma + sigma.T) / 2)
    s.diagonal().add_(2 * tolerance)
    return int(torch.linalg.cholesky_ex(s)[1]) == 0
