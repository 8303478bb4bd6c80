"""KID: unbiased polynomial-kernel MMD between Inception features of generated and reference images, averaged
over seeded random subsets (formulas.kid)."""

from __future__ import annotations

from stylegan_metrics.engine.metric import MetricFamily, parse_count
from stylegan_metrics.formulas.kid import kid_from_arrays

from .kept import SPACE_SUFFIX, KeptFeatures, in_feature_space


class KID(KeptFeatures):
    """KID of `num` generated images against the first `max_real` reference images; `num_subsets` subsets of at
    most `max_subset_size` per side, drawn from the evaluation's seed."""

    def __init__(self, name: str, *, num: int, max_real: int | None, num_subsets: int = 100,
                 max_subset_size: int = 1000, truncation_psi: float = 1.0):
        super().__init__(name, num=num, max_real=max_real, truncation_psi=truncation_psi)
        self.num_subsets, self.max_subset_size = num_subsets, max_subset_size

    def compute(self, gen, real):
        return {self.name: kid_from_arrays(real, gen, num_subsets=self.num_subsets,
                                           max_subset_size=self.max_subset_size, seed=self.seed)}

    def params(self) -> dict:
        return dict(super().params(), num_subsets=self.num_subsets, max_subset_size=self.max_subset_size)


def _make(name: str, groups: dict, *, truncation_psi: float = 1.0, **_) -> KID:
    num = parse_count(groups["count"])
    return in_feature_space(KID(name, num=num, max_real=1_000_000 if groups["full"] else num,
                                truncation_psi=truncation_psi), groups)


FAMILY = MetricFamily(
    "kid", r"kid{count}(?P<full>_full)?" + SPACE_SUFFIX, _make, examples=("kid50k_full", "kid50k"),
    description="kernel Inception distance; _full: up to 1,000,000 reference images, else the first N; "
                "100 subsets of 1,000; _<network>: another feature space (_dinov2: DINOv2 ViT-L/14)")
