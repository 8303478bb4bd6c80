"""Metrics that keep every feature vector (KID, precision/recall, IS): generated features kept per chunk, reference
features served by the evaluation's reference (engine.reference: computed once, cached as .npy)."""

from __future__ import annotations

import numpy as np

from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric
from stylegan_metrics.engine.passes import RowsPart, output_rows
from stylegan_metrics.engine.reference import ReferenceRequest
from stylegan_metrics.engine.state import Payload


SPACE_SUFFIX = r"(?:_(?P<space>[a-z][a-z0-9.-]*))?"  # a metric name's feature space, when not its own network's
SPACE_ALIASES = {"dinov2": "dinov2-vit-l14"}          # short names: fd_dinov2's network


def space_name(network: str) -> str:
    """The suffix that names a registered feature network in a metric name: its alias, or its registry name."""
    return next((alias for alias, name in SPACE_ALIASES.items() if name == network), network)


def in_feature_space(metric: "KeptFeatures", groups: dict) -> "KeptFeatures":
    """The metric in the feature space its name's suffix chooses, any registered feature network (`_dinov2`:
    fd_dinov2's DINOv2 ViT-L/14 with EDM2's resize, sharing its network calls; `_toyfaces`, `_dinov2-vit-b14`,
    ...), which the evaluation's `features` option then leaves. The suffix of the metric's own network is dropped
    (one computation, one name); without a suffix the metric is as it was."""
    space = groups.get("space")
    if not space:
        return metric
    from stylegan_metrics.networks.registry import FEATURE_NETWORKS

    network = SPACE_ALIASES.get(space, space)
    if network not in FEATURE_NETWORKS:
        known = ", ".join([*SPACE_ALIASES, *sorted(FEATURE_NETWORKS)])
        raise InputError(f"{metric.name}: {space!r} is not a feature network; the suffix names one of {known}")
    base = metric.name[:-len(space) - 1]
    if network == metric.network:
        metric.name = base
    else:
        metric.name, metric.network, metric.replaceable = f"{base}_{space_name(network)}", network, False
    return metric


class KeptFeatures(Metric):
    """Base of the metrics that keep features: generated features of output `output` of the feature network
    `network` per chunk; with `max_real` set, reference features too (`compares` False: none)."""

    network = "inception-v3"     # the registry name of its feature network
    replaceable = True           # the evaluation's `features` option replaces it (FID-like metrics, not PR)
    output: int = 0              # which output of the network (inception-v3: 0 pool features, 1 logits)
    compares = True              # reads reference features

    def __init__(self, name: str, *, num: int, max_real: int | None = None, truncation_psi: float = 1.0):
        self.name, self.num, self.max_real, self.truncation_psi = name, num, max_real, truncation_psi

    def prepare(self, ctx: Context) -> None:
        self.extractor = ctx.feature_extractor(self.network, replaceable=self.replaceable)
        self.device, self.seed = ctx.device, ctx.options.seed

    def reference_request(self) -> ReferenceRequest | None:
        if not self.compares:
            return None
        return ReferenceRequest("features", self.extractor, self.output, self.max_real,
                                folder=f"{self.folder}-reference")

    def prepare_reference(self, ctx: Context) -> None:
        request = self.reference_request()
        self.real = ctx.reference.value(request) if request is not None else None  # rows on the main rank only
        self.reference_n = None if request is None else len(ctx.reference.images(self.max_real))  # on every rank

    def state_key(self) -> dict:
        return {"metric": type(self).__name__, "features": self.extractor.fingerprint, "output": self.output}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {"features": (count, -1)}

    def new_part(self) -> RowsPart:
        return output_rows(self.extractor, self.output)

    def finish(self, chunks: dict[int, Payload]):
        gen = np.concatenate([payload["features"] for payload in chunks.values()])  # chunk order
        return self.compute(gen, self.real), None

    def compute(self, gen: np.ndarray, real: np.ndarray | None) -> dict[str, float]:
        raise NotImplementedError

    def params(self) -> dict:
        return dict(num_gen=self.num, max_real=self.max_real, truncation_psi=self.truncation_psi,
                    features=self.extractor.name, features_fingerprint=self.extractor.fingerprint,
                    precision=self.extractor.precision,
                    reference_n=self.reference_n)
