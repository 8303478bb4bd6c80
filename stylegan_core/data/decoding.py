"""One rule for turning an image file into uint8 pixels, shared by metrics (both sides) and training: the header is
checked before any pixel is decoded, and 16-bit or float pixels are scaled exactly or refused, never clipped."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from stylegan_core.errors import DatasetError

MAX_IMAGE_SIDE = 4096                     # the largest side any network here takes (the attribute classifier's)
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE ** 2    # one image may hold at most this many pixels (48 MiB as RGB)
GRAY16_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}
GRAYSCALE_MODES = {"1", "L", "LA", "La", "I", "F"} | GRAY16_MODES
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def open_header(data: bytes, where: str) -> Image.Image:
    """The image in `data` opened lazily (only its header read), refused when it is not an image or would hold
    more than MAX_IMAGE_PIXELS pixels. `where` names the file in messages ("folder: name")."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below with our own limit
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # PIL's message names its in-memory buffer, not the file
        raise DatasetError(f"{where}: not an image PIL can read ({len(data):,} bytes)") from None
    except _READ_ERRORS as e:
        raise DatasetError(f"{where}: cannot read image ({e})") from None
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise DatasetError(f"{where}: {w}x{h} pixels, more than an image may have ({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}); "
                           f"nothing was decoded")
    return img


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def raw_modes(img: Image.Image) -> list[str]:
    """How the file stores its pixels, as PIL's raw modes of the not yet decoded tiles ('RGB;16B', 'I;16B', ...)."""
    modes = []
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        mode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(mode, str):
            modes.append(mode)
    return modes


def is_gray16(img: Image.Image) -> bool:
    """16-bit grayscale, as Pillow 10+ opens it (mode I;16...) or as older Pillow does (mode I, raw mode I;16...);
    call before `load()` (which drops the raw modes)."""
    raw = raw_modes(img)
    return img.mode in GRAY16_MODES or (img.mode == "I" and bool(raw) and all(m.startswith("I;16") for m in raw))


def check_depth(img: Image.Image, where: str) -> None:
    """Refuse what PIL would not read exactly: colour with 16 bits per channel (PIL keeps the high byte only) and
    32-bit integer pixels (no fixed range). 16-bit grayscale and float pixels are scaled by `to_uint8_array`."""
    if is_gray16(img) or img.mode == "F":
        return
    if img.mode.startswith("I"):
        raise DatasetError(f"{where}: 32-bit integer pixels (mode {img.mode}) have no fixed range; save the image "
                           f"with 8 bits per channel")
    deep = [m for m in raw_modes(img) if ";16" in m or ";32" in m]
    if deep:
        raise DatasetError(f"{where}: 16 bits per colour channel ({deep[0]}) are not read (PIL would keep only the "
                           f"high byte); save the image with 8 bits per channel, or as 16-bit grayscale")


def gray16_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint16 0..65535 -> uint8 by v * 255 / 65535 rounded to nearest (= (v + 128) // 257; 257 k -> k)."""
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def float_to_uint8(pixels: np.ndarray, where: str) -> np.ndarray:
    """float 0..1 -> uint8 by floor(v * 255 + 0.5); NaN, infinite or out-of-range values are refused."""
    pixels = pixels.astype(np.float64)
    if not np.isfinite(pixels).all():
        raise DatasetError(f"{where}: float pixels that are NaN or infinite")
    lo, hi = float(pixels.min()), float(pixels.max())
    if lo < 0 or hi > 1:
        raise DatasetError(f"{where}: float pixels must lie in 0..1, these run from {lo:g} to {hi:g}")
    return np.floor(pixels * 255 + 0.5).astype(np.uint8)


def to_uint8_array(img: Image.Image, channels: int, where: str) -> np.ndarray:
    """Decode the pixels: uint8 [H, W, channels] (3 = RGB, alpha dropped; 1 = grayscale). 8-bit images go through
    PIL's conversions; 16-bit grayscale and float (0..1) images are scaled exactly (see the functions above)."""
    check_depth(img, where)
    gray16 = is_gray16(img)
    try:
        img.load()
        if not gray16 and img.mode != "F":
            arr = np.asarray(img.convert("RGB" if channels == 3 else "L"))
            return arr if arr.ndim == 3 else arr[:, :, None]
        values = np.asarray(img)  # [H, W] uint16 (int32 from older Pillow), or float32
    except _READ_ERRORS as e:
        raise DatasetError(f"{where}: cannot read image ({e})") from None
    gray = gray16_to_uint8(values) if gray16 else float_to_uint8(values, where)
    return np.repeat(gray[:, :, None], channels, axis=2)
