"""What a metric is to the engine: a consumer of one pass (what it keeps of each sample), the preparation before
the pass and the numbers after it; and the registry entry that turns a metric name into one."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from stylegan_core.errors import InputError

from .context import Context
from .state import Payload

if TYPE_CHECKING:
    from stylegan_metrics.networks.registry import FeatureExtractor


class MetricWarning(UserWarning):
    """A result computed as asked but weaker than it looks (too few samples, a degenerate network output); the CLI
    prints each as one line."""


class Metric:
    """One metric of one evaluation. Subclasses set `name`, `num` and `source`, and implement the consumer methods
    (`state_key`, `shapes`, `new_part`: see engine.passes), `finish` and `params`.

    `source` names the samples the metric reads: 'generated' (images of G by index, shared by every metric of the
    same truncation), 'pairs' (its own per-index inputs, e.g. path-length pairs) . Metrics with equal
    `pass_key()` share one pass, so each sample is generated once for all of them."""

    name: str                    # the result name, e.g. 'fid50k_full'
    num: int                     # samples read: indices 0..num-1
    source: str = "generated"
    truncation_psi: float = 1.0  # generated images only
    reference_order: int = 0     # lower reads its reference first (kept reference features: before FID sums them)
    uses_reference: bool = False      # compares against reference data (--data): FID, KID, PR
    accepts_statistics: bool = False  # its generated side may be a statistics file (FID of two .npz files)
    extractor: FeatureExtractor | None = None  # the feature network it reads, set by `prepare` (None: none)

    @property
    def folder(self) -> str:     # its state sub-folder: the metric's name, so two metrics of one kind both resume
        return self.name

    @property
    def needs_generator(self) -> bool:  # False: it can read generated images given as files (gen=...)
        return self.source != "generated"

    def pass_key(self) -> tuple:
        return (self.source, self.truncation_psi) if self.source == "generated" else (self.source, id(self))

    def prepare(self, ctx: Context) -> None:
        """Build the networks and check the options, before any long work: every metric of an evaluation prepares
        before any reads its reference, so a missing weights file is reported at once."""

    def prepare_reference(self, ctx: Context) -> None:
        """Read or compute what the metric compares against (reference statistics or features), before the pass."""

    def state_key(self) -> dict:
        raise NotImplementedError

    def shapes(self, count: int) -> dict[str, tuple]:
        raise NotImplementedError

    def new_part(self):
        raise NotImplementedError

    def batches(self, ctx: Context):
        """(start, count) -> views, for a metric with a source of its own; 'generated' metrics share the engine's."""
        raise NotImplementedError

    def finish(self, chunks: dict[int, Payload]) -> tuple[dict[str, float], pd.DataFrame | None]:
        """Results and details from this rank's chunk payloads; runs on every rank (collectives allowed) and
        returns the same on every rank."""
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
