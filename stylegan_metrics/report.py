"""Reports: read result lines (ours and NVIDIA's `metric-*.jsonl`) into one table, write it, plot it."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write
from stylegan_core.training.snapshots import snapshot_images

FORMATS = ("csv", "parquet", "json", "markdown", "html", "latex")
META_COLUMNS = ("num_gpus", "total_time", "timestamp")
MAX_INT = 2**63 - 1   # integers a table column holds (int64)
MAX_CELL = 32         # characters of one cell in a table fitted to a terminal


def read_results(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Read result lines from files and folders into one table: one row per snapshot, one column per result key.

    Columns: `snapshot`, `kimg`, the result keys (first-seen order), `num_gpus`, `total_time`, `timestamp`,
    then `params.<name>`. Rules:
    - A directory stands for every `*.jsonl` below it (recursive, sorted); there a file whose first line is a
      JSON object without `results` (e.g. NVIDIA's `stats.jsonl`) is skipped. Named files are always read.
    - Lines of one snapshot merge into one row, later lines winning for the same key (so `total_time`,
      `num_gpus` and `timestamp` are the last line's). A bare snapshot name (NVIDIA writes
      `network-snapshot-025000.pkl`) is taken relative to the folder of its jsonl file, so runs in different
      folders never merge. Lines without a snapshot each make their own row.
    - `kimg` is parsed from `network-snapshot-<digits>` names (`network-snapshot-000001_504`: 1.504), else NaN.
      Rows are ordered by kimg (NaN last), then snapshot, then first appearance.
    - Nested params flatten with dots, lists become JSON text. A param to which two metrics of one snapshot
      give different values becomes `params.<metric>.<name>` for every metric, in every row.
    """
    records = [rec for file in _result_files(paths) for rec in _read_file(file)]
    if not records:
        raise InputError(f"no result lines in {_describe(paths)}")

    seen: dict[tuple, dict[str, str]] = {}           # (row key, param) -> {metric: JSON of value}
    for key, rec in records:
        for name, value in rec["params"].items():
            seen.setdefault((key, name), {})[rec["metric"]] = json.dumps(value, sort_keys=True, default=str)
    conflicting = {name for (_, name), by_metric in seen.items() if len(set(by_metric.values())) > 1}

    rows: dict[Any, dict[str, Any]] = {}
    for key, rec in records:
        row = rows.setdefault(key, {"snapshot": rec["snapshot"], "kimg": _kimg(rec["snapshot"])})
        row.update(rec["results"])
        row.update({k: rec[k] for k in META_COLUMNS if rec[k] is not None})
        for name, value in rec["params"].items():
            row[f"params.{rec['metric']}.{name}" if name in conflicting else f"params.{name}"] = value

    frame = pd.DataFrame(list(rows.values()))
    results = list(dict.fromkeys(k for _, rec in records for k in rec["results"]))
    params = sorted(c for c in frame.columns if c.startswith("params."))
    frame = frame.reindex(columns=["snapshot", "kimg", *results, *META_COLUMNS, *params])
    frame["kimg"] = frame["kimg"].astype("float64")
    for column in ["num_gpus", *params]:
        kinds = {type(row[column]) for row in rows.values() if row.get(column) is not None}
        frame[column] = _tidy(frame[column], kinds)
    order = frame.sort_values(["kimg", "snapshot"], na_position="last", kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def result_columns(frame: pd.DataFrame) -> list[str]:
    """The result keys of a `read_results` table (every column that is not metadata or a param)."""
    fixed = {"snapshot", "kimg", *META_COLUMNS}
    return [c for c in frame.columns if c not in fixed and not c.startswith("params.")]


def write_report(frame: pd.DataFrame, fmt: str, out: str | os.PathLike | None = None, *,
                 digits: int | None = None) -> str | None:
    """Write `frame` as `fmt` (one of FORMATS) to `out` atomically and return None, or return the text if no `out`.

    `digits`: significant digits of floats in markdown, html and latex (None = every digit, round-trip exact).
    csv, json and parquet always keep every digit. parquet needs `out`.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out is None:
        if fmt == "parquet":
            raise InputError("the parquet format is binary: give an output file (--out FILE.parquet)")
        return _text(frame, fmt, digits)
    with atomic_write(out) as f:
        if fmt == "parquet":
            frame.to_parquet(f, index=False)
        else:
            f.write(_text(frame, fmt, digits).encode("utf-8"))
    return None


def fit_to_width(frame: pd.DataFrame, width: int, *, digits: int | None = None) -> str:
    """`frame` as a markdown table at most `width` characters wide, for a terminal: a cell longer than MAX_CELL
    (or than the width) is cut with an ellipsis (a snapshot keeps its end, the file name), columns are kept in
    order while they fit, and a last line names how many were left out. Every value: `write_report`."""
    width = max(int(width), 20)
    cells = {c: [_elide(_cell(v, digits), min(MAX_CELL, width - 4), left=c == "snapshot") for v in frame[c]]
             for c in frame.columns}
    shown, used = [], 1
    for c in frame.columns:
        need = max([len(c), 3, *map(len, cells[c])]) + 3          # "| " + cell + " "
        if used + need > width:
            break
        shown.append(c)
        used += need
    if not shown:  # not even the first column fits: cut it to the width
        first = frame.columns[0]
        cells[first] = [_elide(v, width - 4, left=True) for v in cells[first]]
        shown = [first]
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) for c in shown}
    sizes = {c: max([len(c), 3, *map(len, cells[c])]) for c in shown}
    line = lambda values: "| " + " | ".join(values) + " |"  # noqa: E731
    lines = [line(_elide(c, sizes[c]).ljust(sizes[c]) for c in shown),
             line(("-" * (sizes[c] - 1) + ":") if numeric[c] else "-" * sizes[c] for c in shown)]
    lines += [line(cells[c][i].rjust(sizes[c]) if numeric[c] else cells[c][i].ljust(sizes[c]) for c in shown)
              for i in range(len(frame))]
    left_out = len(frame.columns) - len(shown)
    if left_out:
        lines.append(_elide(f"({left_out} more column{'s' * (left_out > 1)}, --wide shows all: "
                            f"{', '.join(frame.columns[len(shown):])})", width))
    return "\n".join(lines) + "\n"


def terminal_width() -> int:
    """Columns of the terminal (COLUMNS, else the terminal's own size, else 80)."""
    return shutil.get_terminal_size((80, 24)).columns


def _cell(value: Any, digits: int | None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}g}"
    return str(value)


def _elide(text: str, size: int, *, left: bool = False) -> str:
    """`text` cut to `size` characters with an ellipsis: its start kept, or with `left` its end."""
    if len(text) <= size:
        return text
    return "…" + text[len(text) - size + 1:] if left else text[:size - 1] + "…"


def plot_results(frame: pd.DataFrame, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """Metric-vs-kimg curves, one subplot per result key (one line per run folder), saved atomically as PNG."""
    data = frame.dropna(subset=["kimg"])
    if data["kimg"].nunique() < 2:
        raise InputError(f"a plot needs at least two snapshots with a kimg (network-snapshot-<kimg> names); "
                         f"found {data['kimg'].nunique()}")
    keys = [k for k in result_columns(data) if data[k].notna().any()]
    if not keys:
        raise InputError("a plot needs result values; the snapshots with a kimg have none")
    from stylegan_metrics.figures import new_figure, save_figure

    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = new_figure(rows, cols, figsize=(4.5 * cols, 3.2 * rows))
    runs = data["snapshot"].map(lambda s: os.path.dirname(str(s)))
    for ax, key in zip(axes.flat, keys):
        for run, part in data.groupby(runs, sort=True):
            part = part.dropna(subset=[key]).sort_values("kimg")
            ax.plot(part["kimg"], part[key], marker="o", label=run or ".")
        ax.set_title(key)
        ax.set_xlabel("kimg")
        ax.grid(alpha=0.3)
        if runs.nunique() > 1:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)


def _as_list(paths) -> list:
    return [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def _describe(paths) -> str:
    return ", ".join(str(p) for p in _as_list(paths)) or "(no paths)"


def _result_files(paths) -> list[tuple[Path, bool]]:
    """(file, strict) pairs; strict = named explicitly, so never skipped."""
    files: dict[Path, bool] = {}
    for p in map(Path, _as_list(paths)):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.jsonl") if f.is_file())
            if not found:
                raise InputError(f"no *.jsonl result files in directory {p}")
            for f in found:
                files.setdefault(f, False)
        elif p.is_file():
            files[p] = True
        else:
            raise InputError(f"no such file or directory: {p}")
    return list(files.items())


def _read_file(item: tuple[Path, bool]) -> list[tuple[Any, dict]]:
    """(row key, record) per line; the key is the snapshot, or the line itself when it names none."""
    path, strict = item
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read result lines ({e})") from None
    lines = text.splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines) and not text.endswith("\n"):  # an append cut short (e.g. an older tool's)
                warnings.warn(f"{path}:{number}: an unfinished last line is skipped", stacklevel=2)
                break
            raise InputError(f"{path}:{number}: not a JSON line ({e.msg})") from None
        except RecursionError:
            raise InputError(f"{path}:{number}: JSON nested too deeply") from None
        except ValueError:  # Python's limit on int <-> str conversion (4300 digits)
            raise InputError(f"{path}:{number}: an integer with more than {sys.get_int_max_str_digits()} digits; "
                             f"not a result line") from None
        if not out and not strict and isinstance(obj, dict) and "results" not in obj:
            return []                                  # another kind of JSONL log, e.g. NVIDIA's stats.jsonl
        try:
            rec = _record(obj, f"{path}:{number}", path.parent)
        except RecursionError:
            raise InputError(f"{path}:{number}: JSON nested too deeply") from None
        out.append((rec["snapshot"] or (str(path), number), rec))
    return out


def _record(obj: Any, where: str, folder: Path) -> dict:
    if not isinstance(obj, dict) or not isinstance(obj.get("results"), dict):
        raise InputError(f"{where}: not a metric result line (needs a JSON object with a 'results' dict)")
    numbers = {f"result {k!r}": v for k, v in obj["results"].items()} | {k: obj.get(k) for k in META_COLUMNS}
    for name, value in numbers.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"{where}: {name} is not a number: {value!r}")
        if isinstance(value, int) and abs(value) > sys.float_info.max:
            raise InputError(f"{where}: {name} is an integer of {len(str(abs(value)))} digits, beyond any float")
    params = obj.get("params") or {}
    if not isinstance(params, dict):
        raise InputError(f"{where}: 'params' is not a JSON object")
    snapshot = obj.get("snapshot_pkl")
    if snapshot is not None and os.path.basename(str(snapshot)) == str(snapshot):
        snapshot = folder / str(snapshot)               # NVIDIA's bare name: the pickle lies beside its jsonl
    return {"results": {k: math.nan if v is None else float(v) for k, v in obj["results"].items()},
            "metric": str(obj.get("metric") or ",".join(obj["results"])),
            "snapshot": None if snapshot is None else str(snapshot), "params": _flatten(params),
            **{k: obj.get(k) for k in META_COLUMNS}}


def _kimg(snapshot: str | None) -> float:
    """kimg of a snapshot by the trainer's naming rule (snapshots.snapshot_images), NaN for other names."""
    images = snapshot_images(snapshot) if snapshot else None
    return math.nan if images is None else images / 1000


def _flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for name, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return flat


def _tidy(column: pd.Series, kinds: set[type]) -> pd.Series:
    """Whole-number columns stay integers where some rows lack them (nullable Int64, not 32.0); a column mixing
    types (e.g. 32 and 'auto') becomes text, so every format (parquet) can hold it."""
    if kinds == {int}:
        if column.map(lambda v: pd.notna(v) and not -MAX_INT <= v <= MAX_INT).any():  # beyond int64: as text
            return column.map(lambda v: str(v) if pd.notna(v) else None)
        return column.astype("Int64")
    if len(kinds) > 1 and not kinds <= {int, float}:
        return column.map(lambda v: str(v) if pd.notna(v) else None)
    return column


def _text(frame: pd.DataFrame, fmt: str, digits: int | None) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        rows = [{k: None if pd.isna(v) else v for k, v in row.items()}
                for row in frame.to_dict(orient="records")]
        return "[\n" + ",\n".join(json.dumps(r, default=str) for r in rows) + "\n]\n"
    if fmt == "markdown":
        blank = frame.astype(object).where(frame.notna(), None)
        return blank.to_markdown(index=False, floatfmt="" if digits is None else f".{digits}g", missingval="") + "\n"
    number = (lambda x: repr(float(x))) if digits is None else (lambda x: f"{x:.{digits}g}")
    if fmt == "html":
        return frame.to_html(index=False, float_format=number, na_rep="")
    return frame.to_latex(index=False, float_format=number, na_rep="", escape=True)
