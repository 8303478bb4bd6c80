"""Precision and recall (Kynkäänniemi et al.): k-NN manifolds of VGG16 fc2 features of generated and reference
images, distances in blocks (formulas.precision_recall)."""

from __future__ import annotations

from stylegan_metrics.engine.metric import MetricFamily, parse_count
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays

from .kept import KeptFeatures

BLOCK = 10_000  # rows and columns per distance block, as NVIDIA's


class PrecisionRecall(KeptFeatures):
    """Precision: generated features inside the reference manifold; recall: reference features inside the
    generated one; each manifold the union of balls reaching every point's k-th nearest neighbour."""

    network = "vgg16-fc2"

    def __init__(self, name: str, *, num: int, max_real: int | None, k: int = 3, truncation_psi: float = 1.0):
        super().__init__(name, num=num, max_real=max_real, truncation_psi=truncation_psi)
        self.k = k

    @property
    def folder(self) -> str:
        return "pr"

    def compute(self, gen, real):
        precision, recall = precision_recall_from_arrays(real, gen, k=self.k, row_batch_size=BLOCK,
                                                         col_batch_size=BLOCK, device=self.device)
        return {f"{self.name}_precision": precision, f"{self.name}_recall": recall}

    def params(self) -> dict:
        return dict(super().params(), k=self.k, block=BLOCK)


def _make(name: str, groups: dict, *, truncation_psi: float = 1.0, **_) -> PrecisionRecall:
    num = parse_count(groups["count"])
    return PrecisionRecall(name, num=num, max_real=200_000 if groups["full"] else num, k=int(groups["k"]),
                           truncation_psi=truncation_psi)


FAMILY = MetricFamily(
    "pr", r"pr{count}(?P<k>\d)(?P<full>_full)?", _make, examples=("pr50k3_full", "pr50k3"),
    description="precision and recall of VGG16 features, k nearest neighbours (the last digit); _full: up to "
                "200,000 reference images, else the first N")
