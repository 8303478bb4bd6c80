"""Sane limits on what a file declares, checked before anything is allocated: zip members (declared sizes, CRCs),
arrays inside .npz files (shapes read from their headers), pickle opcodes that declare more bytes than their file
holds, and tensors (or embedded torch files) that claim more memory than their file holds."""

from __future__ import annotations

import dataclasses
import io
import os
import pickletools
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np
import torch

MAX_IMAGE_BYTES = 256 * 2**20   # one image file of a dataset (a 1024x1024 PNG is a few MiB)
MAX_EXPANSION = 16              # a checkpoint's zip members and tensors may declare this many times the file's size
SLACK_BYTES = 64 * 2**20        # ... plus this much (small files, shared storages)
MAX_ARRAY_BYTES = 2**29         # one array of a statistics, cache or state file (8192x8192 float64)


class LimitError(ValueError):
    """A declared size beyond a limit; callers turn it into their own InputError naming the file."""


class PickleLengthError(LimitError):
    """A pickle that cannot be walked to its STOP within its file: truncated, or not a pickle."""


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n:,} bytes"


def check_zip_members(zf: zipfile.ZipFile, file_size: int, *, max_member: int | None = None) -> None:
    """LimitError when a member declares more than `max_member` bytes, or all members together more than
    MAX_EXPANSION x the zip's own size (+ SLACK_BYTES): a small file that would decompress to gigabytes."""
    total = 0
    for info in zf.infolist():
        if max_member is not None and info.file_size > max_member:
            raise LimitError(f"member {info.filename} declares {_mib(info.file_size)} (limit {_mib(max_member)})")
        total += info.file_size
    if total > MAX_EXPANSION * file_size + SLACK_BYTES:
        raise LimitError(f"its members declare {_mib(total)}, far more than the file's {_mib(file_size)}")


def check_zip_crc(zf: zipfile.ZipFile) -> None:
    """LimitError naming the first member whose bytes do not match the CRC-32 the zip recorded for it."""
    try:
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise LimitError(f"its zip structure is damaged ({e})") from None
    if bad is not None:
        raise LimitError(f"member {bad} fails its CRC-32 check (the file was changed or damaged)")


def check_torch_zip(path: str | os.PathLike) -> None:
    """A zip-format torch file (torch.save's default) is checked before torch reads it, which checks neither:
    declared member sizes against the file's size, then every member's CRC-32. LimitError on failure."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch's own test: a pickle that holds a zip is not one
            return
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip_members(zf, path.stat().st_size)
            check_zip_crc(zf)
    except zipfile.BadZipFile as e:
        raise LimitError(f"its zip structure is damaged ({e})") from None


def npz_headers(path: str | os.PathLike, *, budget: bool = True) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{array name: (shape, dtype)} of an .npz, read from each member's .npy header (nothing else is read).
    LimitError for a member that is not a plain .npy array or whose declared size disagrees with its header, and
    (`budget`; else call check_npz_members once the headers are checked against each other) for members that
    together declare far more than the file's size: deflated zeros that would inflate to gigabytes."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                except (ValueError, OSError, EOFError, SyntaxError) as e:
                    raise LimitError(f"member {info.filename} is not a .npy array ({e})") from None
                header = f.tell()
            name = info.filename[:-4]
            if dtype.hasobject:
                raise LimitError(f"array {name} holds Python objects")
            count = int(np.prod(shape, dtype=np.float64))
            if info.file_size != header + count * dtype.itemsize:
                raise LimitError(f"array {name} declares shape {shape} but its member holds {info.file_size} bytes")
            out[name] = (tuple(int(s) for s in shape), dtype)
        if budget:
            check_zip_members(zf, os.stat(path).st_size)
    return out


def check_npz_members(path: str | os.PathLike) -> None:
    """LimitError when the members of an .npz declare far more than its size (MAX_EXPANSION x, + SLACK_BYTES)."""
    with zipfile.ZipFile(path) as zf:
        check_zip_members(zf, os.stat(path).st_size)


def check_array_sizes(headers: dict[str, tuple[tuple[int, ...], np.dtype]], limit: int = MAX_ARRAY_BYTES) -> None:
    for name, (shape, dtype) in headers.items():
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if nbytes > limit:
            raise LimitError(f"array {name} of shape {shape} would take {_mib(nbytes)} (limit {_mib(limit)})")


def claimed_tensor_bytes(obj: Any, max_items: int = 10_000_000) -> int:
    """The memory the tensors and arrays inside `obj` (dicts, lists, tuples, sets, dataclasses; followed without
    recursion) would take once materialised: a zero-stride view of a tiny storage claims its full shape."""
    total, seen, stack, items = 0, set(), [obj], 0
    while stack:
        x = stack.pop()
        items += 1
        if items > max_items:
            raise LimitError("it holds too many objects")
        if isinstance(x, torch.Tensor):
            total += x.numel() * x.element_size()
        elif isinstance(x, np.ndarray):
            total += x.size * x.itemsize
        elif isinstance(x, (str, bytes, int, float, bool, type(None))) or id(x) in seen:
            continue
        elif isinstance(x, dict):
            seen.add(id(x))
            stack.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            seen.add(id(x))
            stack.extend(x)
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            seen.add(id(x))
            stack.extend(getattr(x, f.name) for f in dataclasses.fields(x))
    return total


def check_tensor_claims(obj: Any, file_size: int) -> None:
    """LimitError when the tensors of a file's content claim more than MAX_EXPANSION x its size (+ SLACK_BYTES)."""
    claimed = claimed_tensor_bytes(obj)
    if claimed > MAX_EXPANSION * file_size + SLACK_BYTES:
        raise LimitError(f"its tensors claim {_mib(claimed)} from a file of {_mib(file_size)} (views with zero "
                         "strides or overlapping storage)")


class ClaimBudget:
    """What the storages read from one file may take together: MAX_EXPANSION x the file's size (+ SLACK_BYTES),
    spent claim by claim, each checked before its bytes are read."""

    def __init__(self, file_size: int):
        self.file_size, self.claimed = file_size, 0

    def claim(self, nbytes: int, how: str) -> None:
        """Add `nbytes`; LimitError (saying `how` they are claimed) once the total passes the budget."""
        self.claimed += nbytes
        if self.claimed > MAX_EXPANSION * self.file_size + SLACK_BYTES:
            raise LimitError(f"its tensors claim {_mib(self.claimed)} from a file of {_mib(self.file_size)} ({how})")


def check_embedded_torch_zip(data: bytes, budget: ClaimBudget) -> None:
    """A torch.save zip held as bytes inside another file (a pickled storage), checked before torch reads it: its
    members' declared sizes are claimed from the outer file's `budget`, then every member's CRC-32 is checked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            budget.claim(sum(info.file_size for info in zf.infolist()), "the members of an embedded torch file "
                         "declare that much")
            check_zip_crc(zf)
    except zipfile.BadZipFile as e:
        raise LimitError(f"an embedded torch file's zip structure is damaged ({e})") from None


class _Bounded(io.RawIOBase):
    """A read-only view of a binary file up to `end` that refuses a read asking for more than is left: a length
    field declaring terabytes is an error, not an allocation."""

    def __init__(self, f: BinaryIO, end: int):
        super().__init__()
        self.f, self.end = f, end

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int = -1) -> bytes:
        left = self.end - self.f.tell()
        if n is None or n < 0:
            n = left
        elif n > left:
            raise PickleLengthError(f"an opcode at byte {self.f.tell():,} declares {n:,} bytes, more than the "
                                    f"{max(left, 0):,} left in the file")
        return self.f.read(n)

    def readline(self, limit: int = -1) -> bytes:
        left = max(self.end - self.f.tell(), 0)
        return self.f.readline(left if limit is None or limit < 0 else min(limit, left))


def pickle_opcodes(f: BinaryIO, size: int) -> Iterator[tuple[str, Any]]:
    """(opcode name, argument) of the pickle starting at f's position, up to its STOP, never reading past `size`
    bytes of the file: PickleLengthError for an opcode (or protocol-4 frame) that declares more bytes than are left,
    and for anything pickletools cannot decode (a truncated file, an unknown opcode)."""
    bounded = _Bounded(f, size)
    try:
        for op, arg, pos in pickletools.genops(bounded):
            if op.name == "FRAME" and isinstance(arg, int) and arg > size - f.tell():
                raise PickleLengthError(f"a frame at byte {pos:,} declares {arg:,} bytes, more than the "
                                        f"{size - f.tell():,} left in the file")
            yield op.name, arg
    except LimitError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise PickleLengthError(str(e)) from None


def check_pickle_lengths(f: BinaryIO, size: int, *, pickles: int = 1) -> None:
    """Walks `pickles` consecutive pickles from f's position (stopping early at the file's end between two) without
    building anything, so that no length an opcode declares exceeds what the file holds; PickleLengthError
    otherwise."""
    for _ in range(pickles):
        if f.tell() >= size:
            return
        for _ in pickle_opcodes(f, size):
            pass


def build_within(make: Callable[[], torch.nn.Module], stored: Any) -> torch.nn.Module:
    """`make()`, refused with a LimitError as soon as its tensor allocations would pass MAX_EXPANSION x (+ SLACK_BYTES)
    the bytes of the `stored` tensors it is to be filled from: hyper-parameters of a crafted file (img_resolution
    65536 beside a 16 px generator's weights, a z_dim of a billion) are caught before the memory is taken."""
    stored_bytes = claimed_tensor_bytes(stored)
    budget = MAX_EXPANSION * stored_bytes + SLACK_BYTES
    with _AllocationBudget(budget, stored_bytes):
        return make()


_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
              torch.empty_strided, torch.eye, torch.arange, torch.linspace, torch.logspace}
_LIKE = {torch.empty_like, torch.zeros_like, torch.ones_like, torch.full_like, torch.rand_like, torch.randn_like}
_NEW = {"new_empty", "new_zeros", "new_ones", "new_full"}


class _AllocationBudget(torch.overrides.TorchFunctionMode):
    """Counts the bytes that tensor factories are asked for and raises before a call would pass the budget."""

    def __init__(self, budget: int, stored_bytes: int):
        super().__init__()
        self.left, self.budget, self.stored_bytes = budget, budget, stored_bytes

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        numel = _requested_numel(func, args, kwargs)
        if numel:
            dtype = kwargs.get("dtype") or (torch.int64 if func in (torch.randint, torch.arange) and
                                            not any(isinstance(a, float) for a in args) else torch.get_default_dtype())
            self.left -= numel * dtype.itemsize
            if self.left < 0:
                raise LimitError(f"building it from its hyper-parameters would take more than {_mib(self.budget)} "
                                 f"for {_mib(self.stored_bytes)} of stored weights")
        return func(*args, **kwargs)


def _requested_numel(func, args: tuple, kwargs: dict) -> int:
    """Elements a factory call asks for (0 for anything else)."""
    if func in _LIKE:
        return args[0].numel() if args and isinstance(args[0], torch.Tensor) else 0
    if getattr(func, "__name__", "") in _NEW:
        return _shape_numel(args[1:2] or (kwargs.get("size"),))
    if func not in _FACTORIES:
        return 0
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if func is torch.eye:
        n = int(numbers[0]) if numbers else 0
        return n * (int(numbers[1]) if len(numbers) > 1 else n)
    if func is torch.arange:
        start, end, step = ([0.0, *numbers] if len(numbers) == 1 else numbers + [1.0])[:3]
        return max(0, int((end - start) / step)) if step else 0
    if func in (torch.linspace, torch.logspace):
        return int(args[2]) if len(args) > 2 else int(kwargs.get("steps", 0))
    if func is torch.randint:
        return _shape_numel([a for a in args if isinstance(a, (tuple, list, torch.Size))][:1] or (kwargs.get("size"),))
    if "size" in kwargs:
        return _shape_numel((kwargs["size"],))
    return _shape_numel(args)


def _shape_numel(args) -> int:
    """numel of a size given as one tuple / list / Size or as leading ints (torch.zeros(3, 4))."""
    if args and isinstance(args[0], (tuple, list, torch.Size)):
        dims = list(args[0])
    else:
        dims = []
        for a in args:
            if isinstance(a, bool) or not isinstance(a, int):
                break
            dims.append(a)
    n = 1
    for d in dims:
        if isinstance(d, torch.Tensor):
            d = int(d)
        if not isinstance(d, int) or d < 0:
            return 0  # torch reports the bad size itself
        n *= d
    return n if dims or args == () else 0
