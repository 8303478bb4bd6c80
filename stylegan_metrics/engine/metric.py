"""What a metric is to the engine: a consumer of one pass (what it keeps of each sample), the preparation before
the pass and the numbers after it; and the registry entry that turns a metric name into one."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from stylegan_core.errors import InputError


if TYPE_CHECKING:
    from stylegan_metrics.networks.registry import FeatureExtractor

    from .context import Context
    from .reference import ReferenceRequest


class MetricWarning(UserWarning):
    """A result computed as asked but weaker than it looks (too few samples, a degenerate network output); the CLI
    prints each as one line."""


class Metric:
    """One metric of one evaluation. Subclasses set `name` and `num`, and implement the consumer methods
    (`state_key`, `shapes`, `new_part`: see engine.passes), `finish` and `params`. Everything else the engine asks of
    a metric is declared here with its default.

    Metrics with equal `pass_key()` share one pass, so each sample is generated once for all of them."""

    name: str                    # the result name, e.g. 'fid50k_full'
    num: int                     # samples read: indices 0..num-1
    samples: str = "generated"   # what it reads: 'generated' (images of G by index, shared by every metric of the
                                 # same truncation), 'own' (its own per-index inputs: `batches`, e.g. path-length
                                 # pairs) or 'none' (nothing: `finish` works from what `prepare` read)
    truncation_psi: float = 1.0  # generated images only
    reduction: str = "chunks"    # what `finish` receives (engine.reductions): 'chunks', every chunk's payload of
                                 # every rank; 'sum', one payload, every chunk's arrays summed (float64 sums)
    extractor: FeatureExtractor | None = None  # the feature network it reads, set by `prepare` (None: none); the
                                 # generator then runs at that network's precision

    @property
    def folder(self) -> str:     # its state sub-folder: the metric's name, so two metrics of one kind both resume
        return self.name

    @property
    def needs_generator(self) -> bool:  # False: it can read generated images given as files (gen=...)
        return self.samples == "own"

    def pass_key(self) -> tuple:
        return (self.samples, self.truncation_psi) if self.samples == "generated" else (self.samples, id(self))

    def prepare(self, ctx: Context) -> None:
        """Build the networks and check the options, before any long work: every metric of an evaluation prepares
        before any reference is read, so a missing weights file is reported at once."""

    def reference_request(self) -> ReferenceRequest | None:
        """What it compares against, once prepared (None: nothing): the engine reads every metric's request in one
        pass over the reference images before `prepare_reference`."""
        return None

    def prepare_reference(self, ctx: Context) -> None:
        """Take what it compares against from the context (`ctx.reference_stats`, `ctx.reference_features`: served
        from what `reference_request` asked for), before the pass."""

    def state_key(self) -> dict:
        raise NotImplementedError

    def shapes(self, count: int) -> dict[str, tuple]:
        raise NotImplementedError

    def new_part(self):
        raise NotImplementedError

    def batches(self, ctx: Context):
        """(start, count) -> views, for a metric with samples of its own ('own')."""
        raise NotImplementedError

    def finish(self, payload) -> tuple[dict[str, float], pd.DataFrame | None]:
        """Results and details (or None) from every rank's payloads, reduced as `reduction` says: {chunk index:
        payload} in chunk order ('chunks') or one summed payload ('sum'). Runs once, on the main rank; the engine
        hands its value to the other ranks."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        raise NotImplementedError


COUNT = r"(?P<count>\d+k?)"  # '50k' = 50,000; '200' = 200


def parse_count(text: str) -> int:
    return check_count(int(text[:-1]) * 1000 if text.endswith("k") else int(text))


MAX_COUNT = 10_000_000  # samples a metric may read: 200x NVIDIA's 50k, beyond any published evaluation


def check_count(count) -> int:
    """A metric's sample count: an integer in [2, MAX_COUNT] (the same message from the API, the CLI and metric
    names), refused before any work: a typo such as fid99999999999999_full would otherwise generate for years."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 2:
        raise InputError(f"a metric needs at least 2 samples, not {count!r}")
    if count > MAX_COUNT:
        raise InputError(f"a metric reads at most {MAX_COUNT:,} samples, not {int(count):,}")
    return int(count)


def count_name(count: int) -> str:
    """50000 -> '50k', 200 -> '200', 2500 -> '2500'."""
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


@dataclass(frozen=True)
class MetricFamily:
    """A registry entry: names matching `pattern` (a regular expression with named groups, `{count}` standing for
    a sample count such as 50k or 200) build a Metric with `make(groups, **options)`."""

    family: str                                   # e.g. 'fid'
    pattern: str                                  # e.g. r'fid{count}(?P<full>_full)?'
    make: Callable[..., Metric]                   # (name, groups, **options) -> Metric; options: evaluate's
                                                  # cov, truncation_psi, attributes (each takes what it uses)
    examples: tuple[str, ...] = ()                # NVIDIA's own names of this family
    description: str = ""

    def match(self, name: str) -> dict | None:
        m = re.fullmatch(self.pattern.replace("{count}", COUNT), name)
        return None if m is None else m.groupdict()
