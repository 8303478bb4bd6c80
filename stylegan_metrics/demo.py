"""`stylegan-metrics demo`: every metric and figure on the bundled toyfaces generator, offline, on a CPU."""

from __future__ import annotations

import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from stylegan_core.files import atomic_write
from stylegan_core.data.toyfaces import ToyFaces

from stylegan_metrics import figures
from stylegan_metrics.engine.device import resolve_device
from stylegan_metrics.engine.metric import count_name
from stylegan_metrics.metrics import FAMILIES, evaluate
from stylegan_metrics.networks.registry import build_feature_extractor
from stylegan_metrics.result import MetricResult
from stylegan_metrics.networks.toyfaces_nets import GENERATOR_FILE, bundled_path, load_toyfaces_classifier, load_toyfaces_generator

MEANING = {  # the demo's own words for its numbers; any other metric is described by its registry entry
    "fid": "Frechet distance between toyfaces-classifier features of generated and real images (lower = closer)",
    "kid": "kernel distance (unbiased cubic-kernel MMD, 100 subsets of 1,000) between the same features "
           "(lower = closer; near 0 for the same distribution)",
    "_std": "standard deviation of the hair-colour Inception Score over its 10 splits",
    "is": "Inception Score's formula on the classifier's hair colour (6 exclusive classes: bald, black, blond, "
          "brown, gray, other); higher = confident and varied hair colours, at most 6",
    "zfull": "perceptual path length in Z, whole paths (lower = smoother)",
    "wfull": "perceptual path length in W, whole paths (lower = smoother)",
    "zend": "perceptual path length in Z, path endpoints only",
    "wend": "perceptual path length in W, path endpoints only",
    "_z": "linear separability of the 40 attributes in Z: 2^(sum of H(Y|X) bits) (lower = more disentangled)",
    "_w": "linear separability of the 40 attributes in W (lower = more disentangled)",
}
SHORT = {  # the printed table's column: the same keys, a few words each
    "fid": "Frechet distance of features (lower = closer)",
    "kid": "kernel distance of features (lower = closer)",
    "_std": "IS spread over 10 splits",
    "is": "Inception Score, 6 hair states (max 6)",
    "zfull": "path length in Z, full paths (lower = smoother)",
    "wfull": "path length in W, full paths",
    "zend": "path length in Z, endpoints",
    "wend": "path length in W, endpoints",
    "_z": "separability in Z, 40 attributes (lower = better)",
    "_w": "separability in W",
}
SIMILARITY = "toyfaces-lpips"  # the demo's perceptual distance (PPL)
TIME_NOTE = ("seconds*: each metric's time includes the whole pass it shares with others (FID, KID, IS and LS read "
             "one set of generated images), and the rows of one metric (IS mean and std, LS in Z and W) repeat it, "
             "so the column sums to more than the run took")


@dataclass(frozen=True)
class DemoSizes:
    fid_gen: int        # generated images for FID
    fid_real: int       # rendered toyfaces for the reference statistics
    ppl: int            # pairs per PPL variant (four variants)
    ls: int             # samples for linear separability


FULL = DemoSizes(fid_gen=10_000, fid_real=10_000, ppl=2_500, ls=10_000)
QUICK = DemoSizes(fid_gen=1_000, fid_real=1_000, ppl=400, ls=2_000)
REFERENCE_WORLD = 0  # the toyfaces world the bundled generator was trained on


def demo_metrics(sizes: DemoSizes) -> list[str]:
    """The registry names the demo evaluates: FID, KID, IS, the four path lengths and linear separability."""
    paths = [f"ppl{count_name(sizes.ppl)}_{sp}{sm}" for sp in ("z", "w") for sm in ("full", "end")]
    count = count_name(sizes.fid_gen)
    return [f"fid{count}_full", f"kid{count}_full", f"is{count}", *paths, f"ls{count_name(sizes.ls)}"]


def _meaning(metric: str, key: str, words: dict[str, str] = MEANING) -> str:
    mine = [text for suffix, text in words.items() if key.startswith(suffix) or key.endswith(suffix)]
    if mine:
        return mine[0]
    return next(f.description for f in FAMILIES if f.match(metric) is not None)


def _samples(r: MetricResult, sizes: DemoSizes) -> str:
    if "num_gen" in r.params:
        real = r.params.get("reference_n", sizes.fid_real)
        return f"{r.params['num_gen']} generated" + (f" vs {real} real" if real else "")
    return f"{r.params['num_samples']} {'pairs' if 'epsilon' in r.params else 'samples'}"


def _report_table(results: list[MetricResult], sizes: DemoSizes) -> pd.DataFrame:
    rows = [dict(metric=key, value=value, samples=_samples(r, sizes), seconds_with_shared=round(r.total_time, 1),
                 short=_meaning(r.metric, key, SHORT), meaning=_meaning(r.metric, key))
            for r in results for key, value in r.results.items()]
    return pd.DataFrame(rows)


def printed_table(table: pd.DataFrame) -> str:
    """The demo's table for a terminal: metric, value, samples, seconds (with shared passes), a short meaning;
    numbers right-aligned, text left-aligned; then the total time and what the seconds column counts."""
    columns = {"metric": table.metric, "value": table.value.map(lambda v: f"{v:.4g}"), "samples": table.samples,
               "seconds*": table.seconds_with_shared.map(lambda v: f"{v:.1f}"), "meaning": table.short}
    right = {"value", "seconds*"}
    widths = {name: max(len(name), *map(len, values)) for name, values in columns.items()}
    align = lambda name, text: text.rjust(widths[name]) if name in right else text.ljust(widths[name])  # noqa: E731
    lines = ["  ".join(align(name, name) for name in columns).rstrip()]
    lines += ["  ".join(align(name, columns[name].iloc[i]) for name in columns).rstrip() for i in range(len(table))]
    note = f"total {table.attrs.get('seconds', float('nan')):.0f} s; {TIME_NOTE}"
    return "\n".join(lines + textwrap.wrap(note, 100)) + "\n"


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode())


def run_demo(
    out: str | os.PathLike = "demo-out",  # Folder for the report, the JSONL lines and the figures.
    *,
    quick: bool = False,                  # Smaller sample counts (about 1/10 of the work).
    device: str | torch.device | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Load the bundled generator and classifier, compute FID, KID, IS, PPL (z/w, full/end) and LS (z/w, 40
    attributes), write report.{csv,md,json}, metrics.jsonl and the figures into `out`; returns the report table."""
    start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else FULL
    dev = resolve_device(device)
    G = load_toyfaces_generator(dev)
    classifier = load_toyfaces_classifier(dev)
    ckpt = str(bundled_path(GENERATOR_FILE))

    extractor = build_feature_extractor("toyfaces", device=dev)
    reference = ToyFaces(sizes.fid_real, resolution=G.img_resolution, seed=REFERENCE_WORLD)  # rendered on the fly
    results = evaluate(G, demo_metrics(sizes), data=reference, features=extractor, similarity=SIMILARITY,
                       classifier=classifier, batch_size=250, device=dev, progress=progress, snapshot_pkl=ckpt)
    for r in results:
        r.params["demo"] = "quick" if quick else "full"
        if r.params.get("reference_n"):
            r.params["reference"] = f"toyfaces world {REFERENCE_WORLD}, images 0..{sizes.fid_real - 1}"
    _write_text(out / "metrics.jsonl", "".join(r.to_json_line() for r in results))
    paths = [r for r in results if r.metric.startswith("ppl")]
    ls_result = next(r for r in results if r.metric.startswith("ls"))
    ppl_details = pd.concat([r.details for r in paths], ignore_index=True)
    ppl_values = {f"ppl_{r.params['space']}{r.params['sampling']}": r.value for r in paths}
    with atomic_write(out / "ppl-distances.csv") as f:
        ppl_details.to_csv(f, index=False)
    with atomic_write(out / "ls-attributes.csv") as f:
        ls_result.details.to_csv(f, index=False)

    figures.sample_grid(G, out / "samples.png", device=dev)
    mixing = figures.style_mixing_grid(G, out / "style-mixing.png", device=dev)
    figures.truncation_sweep(G, out / "truncation.png", device=dev)
    figures.ppl_histograms(ppl_details, ppl_values, out / "ppl-histograms.png", similarity=SIMILARITY)
    figures.ls_entropy(ls_result.details, out / "ls-entropy.png")

    table = _report_table(results, sizes)
    table.attrs["seconds"] = time.time() - start
    with atomic_write(out / "report.csv") as f:
        table.drop(columns="short").to_csv(f, index=False)
    _write_text(out / "report.json", table.drop(columns="short").to_json(orient="records", indent=1))
    notes = _notes(figures.absent_attributes(ls_result.details), mixing)
    _write_text(out / "report.md", _markdown(table, table.attrs["seconds"], quick, G.img_resolution, notes))
    return table


def _notes(absent: list[str], mixing: dict[str, float]) -> list[str]:
    """What the table and figures do not say by themselves: attributes that never occur, style-mixing strength."""
    notes = []
    if absent:
        notes.append(f"{len(absent)} attributes never occur in the kept generated samples (positive rate 0): "
                     f"{', '.join(absent)}. Their H(Y|X) is 0 bits without any separation, so they add "
                     f"nothing to LS in either space (marked red in ls-entropy.png).")
    if mixing:
        notes.append("style-mixing.png: copying one group of B's styles into A changes A's pixels by "
                     + ", ".join(f"{v:.0f}/255 ({k})" for k, v in mixing.items()) + " on average.")
    return notes


def _markdown(table: pd.DataFrame, seconds: float, quick: bool, resolution: int, notes: list[str]) -> str:
    lines = ["| metric | value | samples | seconds* | meaning |", "| --- | ---: | --- | ---: | --- |"]
    lines += [f"| `{r.metric}` | {r.value:.4g} | {r.samples} | {r.seconds_with_shared:.1f} | "
              f"{r.meaning.replace('|', chr(92) + '|')} |"
              for r in table.itertuples()]
    head = (f"# stylegan-metrics demo ({'quick' if quick else 'full'})\n\nBundled toyfaces generator ({resolution} px); "
            f"feature networks `toyfaces` and `{SIMILARITY}` (domain networks: not comparable to Inception-FID "
            f"or VGG-LPIPS). Total time {seconds:.0f} s.\n\n")
    tail = "\n\n" + TIME_NOTE + ".\n" + "".join(f"\n{note}\n" for note in notes)
    return head + "\n".join(lines) + tail
