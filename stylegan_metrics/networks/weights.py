"""Find, verify (SHA-256) and download the weight files of the standard feature networks."""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import pickle
import re
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write
from stylegan_core.limits import LimitError, check_tensor_claims, check_torch_zip

_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # registry name, e.g. 'inception-v3'
    filename: str  # '<stem>-<sha256 hex prefix>.pth'; the upstream's own name when `sha256` is given
    url: str
    sha256: str | None = None  # the whole SHA-256 (64 hex digits), for upstream files whose names carry no hash

    def __post_init__(self) -> None:
        if self.sha256 is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", self.sha256) or not re.fullmatch(r"[^/\\]+\.pth", self.filename):
                raise ValueError(f"weights {self.filename!r}: sha256 must be 64 lowercase hex digits and the file "
                                 f"name a '.pth' name, got {self.sha256!r}")
        elif not re.fullmatch(r"[^/\\]+-[0-9a-f]{8,64}\.pth", self.filename):
            raise ValueError(f"weights file name {self.filename!r} must end in '-<8+ hex digits of its SHA-256>.pth'")

    @property
    def sha256_prefix(self) -> str:
        """What the file's SHA-256 must start with: the recorded whole hash, else the file name's hex suffix."""
        return self.sha256 if self.sha256 is not None else self.filename.removesuffix(".pth").rsplit("-", 1)[1]

    @property
    def hash_source(self) -> str:
        return "recorded for it" if self.sha256 is not None else "from its file name"


STANDARD_WEIGHTS: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in (
        WeightsSpec(
            "inception-v3",
            "weights-inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        ),
        # torchvision's ImageNet VGG16: lpips-vgg16's trunk, and vgg16-fc2 (torch-fidelity's `vgg16` extractor
        # loads this very file; its fc2 features match NVIDIA's `vgg16` metric network)
        WeightsSpec("vgg16", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
        # Meta's DINOv2 backbones (dinov2-vit-*14 and their -pil variants), under the names torch.hub gives them; Meta
        # publishes no hashes: these SHA-256s are the ones other projects record for these URLs (docs/networks.md)
        *(WeightsSpec(f"dinov2-vit-{size}14", f"dinov2_vit{size}14_pretrain.pth",
                      f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{size}14/dinov2_vit{size}14_pretrain.pth", sha)
          for size, sha in (("s", "b938bf1bc15cd2ec0feacfe3a1bb553fe8ea9ca46a7e1d8d00217f29aef60cd9"),
                            ("b", "0b8b82f85de91b424aded121c7e1dcc2b7bc6d0adeea651bf73a13307fad8c73"),
                            ("l", "d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428"),
                            ("g", "baf8467e50af277596bbbafa06887c177ee899ab46033649c383577d7e9309d3"))),
    )
}


class WeightsError(InputError):
    """A weight file is missing, corrupt, not a state dict, or could not be downloaded; the message says how to fix it."""


def weights_home() -> Path:
    """`$STYLEGAN_METRICS_HOME/weights`, or `~/.cache/stylegan-metrics/weights`; read at call time."""
    home = os.environ.get("STYLEGAN_METRICS_HOME")
    base = Path(home).expanduser() if home else Path("~/.cache/stylegan-metrics").expanduser()
    return base / "weights"


def search_dirs() -> list[Path]:
    """Cache folders in search order: `weights_home()`, then `$TORCH_HOME/hub/checkpoints` (torch.hub.get_dir())."""
    return [weights_home(), Path(torch.hub.get_dir()) / "checkpoints"]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file; remembered per (path, size, mtime), so checking then fingerprinting reads it once."""
    st = os.stat(path)
    return _sha256_of_file(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_zip_once(path: Path) -> None:
    """limits.check_torch_zip (sizes, CRC-32s), remembered per (path, size, mtime) like the SHA-256: resolving a
    file and then building the network from it reads it once."""
    st = path.stat()
    _checked_zip(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _checked_zip(path: str, size: int, mtime_ns: int) -> None:
    check_torch_zip(path)  # raises on failure: failures are not cached


def _guidance(spec: WeightsSpec, searched: list[Path]) -> str:
    places = ", ".join(str(p) for p in searched)
    target = weights_home() / spec.filename
    return f"searched: {places}; download {spec.url} and save it as {target}, or pass --weights PATH"


def _offline() -> bool:
    return os.environ.get("STYLEGAN_METRICS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """`torch.load(path, map_location='cpu', weights_only=True)`, required to be a non-empty dict of tensors.
    Files in the zip format are memory-mapped, so tensors nobody uses (VGG16's classifier) are never loaded; their
    members' declared sizes and CRC-32s are checked first, and tensors may not claim far more than the file holds."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        _check_zip_once(path)  # declared sizes, then every member's CRC-32: torch checks neither
        mmap = zipfile.is_zipfile(path)  # torch.save's format since 1.6; older files cannot be mapped
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        check_tensor_claims(data, path.stat().st_size)
    except LimitError as e:
        raise WeightsError(f"{path}: refused: {e}") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it references {found.group(1)}" if found else "it holds more than tensors and plain data"
        raise WeightsError(f"{path}: refused to load weights: {what}; expected a dict of tensors") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, TypeError) as e:
        raise WeightsError(f"{path}: truncated or not a PyTorch weights file ({type(e).__name__})") from None
    if not isinstance(data, dict) or not data:
        raise WeightsError(f"{path}: not a state dict (got {type(data).__name__}); expected a dict of tensors")
    bad = [k for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: not a state dict: entry {bad[0]!r} is not a tensor; expected a dict of tensors")
    return data


def _download(spec: WeightsSpec, dest: Path, searched: list[Path], progress: bool) -> Path:
    """Stream `spec.url` to a temp file beside `dest`, check its SHA-256 prefix, then rename it into place."""
    try:
        digest = hashlib.sha256()
        with atomic_write(dest, suffix=".part") as f, \
                urllib.request.urlopen(spec.url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
            total = int(length) if length and length.isdigit() else None
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=spec.filename, disable=not progress)
            with bar:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            actual = digest.hexdigest()
            if not actual.startswith(spec.sha256_prefix):  # raising here leaves no file behind
                raise WeightsError(
                    f"downloaded {spec.filename} from {spec.url} has SHA-256 {actual[:len(spec.sha256_prefix)]}..., "
                    f"expected {spec.sha256_prefix}... (corrupt or changed download); {_guidance(spec, searched)}"
                )
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise WeightsError(
            f"{spec.filename} not found and its download failed ({type(e).__name__}: {reason}); {_guidance(spec, searched)}"
        ) from None
    return dest


def resolve_weights(
    name: str | WeightsSpec,
    weights: str | os.PathLike | None = None,
    *,
    allow_download: bool | None = None,
    progress: bool = True,
) -> Path:
    """The path of the weight file of `name` (a key of STANDARD_WEIGHTS, or a WeightsSpec for other files).

    An explicit `weights` path is used as given once it loads as a dict of tensors (no SHA check).
    Otherwise the first of `search_dirs()` holding the file wins, after its SHA-256 prefix is checked;
    if none holds it, it is downloaded into `weights_home()`, unless `allow_download` is False or,
    when `allow_download` is None, `STYLEGAN_METRICS_OFFLINE=1` is set. Every failure is a WeightsError.
    """
    if isinstance(name, WeightsSpec):
        spec = name
    elif name in STANDARD_WEIGHTS:
        spec = STANDARD_WEIGHTS[name]
    else:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(STANDARD_WEIGHTS)}")

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"weights file {path} (for {spec.name}, normally {spec.filename}) does not exist; {_guidance(spec, [path])}"
            )
        try:
            load_state_dict(path)
        except WeightsError as e:
            raise WeightsError(f"{e} (for {spec.name}); {_guidance(spec, [path])}") from None
        return path

    searched = search_dirs()
    for folder in searched:
        path = folder / spec.filename
        if path.is_file():
            actual = sha256_of(path)
            if not actual.startswith(spec.sha256_prefix):
                raise WeightsError(
                    f"{path}: SHA-256 starts with {actual[:len(spec.sha256_prefix)]}, expected {spec.sha256_prefix} "
                    f"({spec.hash_source}); the file is corrupt or not {spec.filename}, remove or replace it; "
                    f"{_guidance(spec, searched)}"
                )
            return path

    if allow_download is False or (allow_download is None and _offline()):
        why = "allow_download=False" if allow_download is False else "STYLEGAN_METRICS_OFFLINE=1"
        raise WeightsError(
            f"{spec.filename} ({spec.name}) not found and downloads are off ({why}); {_guidance(spec, searched)}"
        )
    return _download(spec, searched[0] / spec.filename, searched, progress)
