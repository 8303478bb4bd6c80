"""Density and coverage (Naeem et al. 2020): generated VGG16 fc2 features counted in the k-NN balls of reference
features, distances in blocks (formulas.density_coverage)."""

from __future__ import annotations

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import MetricFamily, parse_count
from stylegan_metrics.formulas.density_coverage import density_coverage_from_arrays

from .kept import SPACE_SUFFIX, KeptFeatures, in_feature_space
from .precision_recall import BLOCK, check_neighbours, check_reference_count


class DensityCoverage(KeptFeatures):
    """Density: how many reference balls hold each generated feature, over k; coverage: the fraction of reference
    features with a generated feature inside their own ball; each ball reaching the reference feature's k-th nearest
    reference neighbour. The features are precision/recall's: one VGG16 call per image serves both."""

    network = "vgg16-fc2"
    replaceable = False  # the evaluation's `features` (Inception's replacement) leaves it

    def __init__(self, name: str, *, num: int, max_real: int | None, k: int = 5, truncation_psi: float = 1.0):
        check_neighbours(name, k, num, example="dc50k5 = 50k images, k = 5",
                         why="a ball reaching k = {k} neighbours besides its centre holds k + 1 points")
        super().__init__(name, num=num, max_real=max_real, truncation_psi=truncation_psi)
        self.k = k

    def prepare(self, ctx: Context) -> None:
        """The reference count is checked before any network runs (the VGG16 passes take minutes)."""
        check_reference_count(ctx, self.name, self.k, self.max_real)
        super().prepare(ctx)

    def compute(self, gen, real):
        density, coverage = density_coverage_from_arrays(real, gen, k=self.k, row_batch_size=BLOCK,
                                                         col_batch_size=BLOCK, device=self.device)
        return {f"{self.name}_density": density, f"{self.name}_coverage": coverage}

    def params(self) -> dict:
        return dict(super().params(), k=self.k, block=BLOCK)


def _make(name: str, groups: dict, *, truncation_psi: float = 1.0, **_) -> DensityCoverage:
    num = parse_count(groups["count"])
    return in_feature_space(DensityCoverage(name, num=num, max_real=200_000 if groups["full"] else num,
                                            k=int(groups["k"]), truncation_psi=truncation_psi), groups)


FAMILY = MetricFamily(
    "dc", r"dc{count}(?P<k>\d)(?P<full>_full)?" + SPACE_SUFFIX, _make, examples=("dc50k5_full", "dc50k5"),
    description="density and coverage of VGG16 features, k nearest neighbours (the last digit); _full: up to "
                "200,000 reference images, else the first N; _dinov2: in DINOv2 ViT-L/14 features")
