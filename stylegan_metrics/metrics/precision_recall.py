"""Precision and recall (Kynkäänniemi et al.): k-NN manifolds of VGG16 fc2 features of generated and reference
images, distances in blocks (formulas.precision_recall)."""

from __future__ import annotations

from typing import Callable

from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.reference_images import is_images
from stylegan_metrics.engine.metric import MetricFamily, check_count, parse_count
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays

from .kept import SPACE_SUFFIX, KeptFeatures, in_feature_space

BLOCK = 10_000  # rows and columns per distance block, as NVIDIA's


def check_neighbours(name: str, k, num, *, example: str,
                     why: str = "each manifold point needs k = {k} neighbours besides itself") -> None:
    """k at least 1 and a count of at least k + 1 images, checked when the name is read (`example`: how a name
    of the family spells its count and k; `why`: why k + 1 generated images, {k} standing for k)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"{name}: k (the digit after the count, {example}) must be at least 1, not {k!r}")
    check_count(num)
    if num < k + 1:
        raise InputError(f"{name}: {num} generated images, but {why.format(k=k)}: at least {k + 1} images")


def check_reference_count(ctx: Context, name: str, k: int, max_real: int | None) -> None:
    """At least k + 1 reference images, checked before any network runs (the VGG16 passes take minutes)."""
    if ctx.options.data is not None and is_images(ctx.options.data):
        real = len(ctx.reference.images(max_real))
        if real < k + 1:
            raise InputError(f"{name}: the reference holds {real} images, but each manifold point needs "
                             f"k = {k} neighbours besides itself: at least {k + 1} images")


class NeighbourMetric(KeptFeatures):
    """Base of the k-nearest-neighbour metrics of VGG16 fc2 features (precision/recall, density/coverage): k and the
    counts checked up front, the reference count before any network; subclasses set `formula` (real, gen, k, blocks,
    device -> two numbers), `results` (their names) and `example` and `why` (the wording of the k check)."""

    network = "vgg16-fc2"
    replaceable = False  # the evaluation's `features` (Inception's replacement) leaves it
    formula: Callable[..., tuple[float, float]]  # formulas.*_from_arrays(real, gen, k=..., ...)
    results: tuple[str, str]                     # result names after the metric's: ('precision', 'recall')
    example: str = ""    # how a name of the family spells its count and k, e.g. 'pr50k3 = 50k images, k = 3'
    why: str = "each manifold point needs k = {k} neighbours besides itself"

    def __init__(
        self,
        name: str,                  # result name
        *,
        num: int,                   # generated images
        max_real: int | None,       # reference images used (None: all)
        k: int,                     # neighbours
        truncation_psi: float = 1.0,
    ):
        check_neighbours(name, k, num, example=self.example, why=self.why)
        super().__init__(name, num=num, max_real=max_real, truncation_psi=truncation_psi)
        self.k = k

    def prepare(self, ctx: Context) -> None:
        """The reference count is checked before any network runs (the VGG16 passes take minutes)."""
        check_reference_count(ctx, self.name, self.k, self.max_real)
        super().prepare(ctx)

    def compute(self, gen, real):
        values = self.formula(real, gen, k=self.k, row_batch_size=BLOCK, col_batch_size=BLOCK, device=self.device)
        return {f"{self.name}_{result}": value for result, value in zip(self.results, values)}

    def params(self) -> dict:
        return dict(super().params(), k=self.k, block=BLOCK)


def neighbour_family(family: str, cls: type[NeighbourMetric], **kwargs) -> MetricFamily:
    """The registry entry of a k-NN metric: '<family><count><k>' (the first N reference images) and
    '..._full' (up to 200,000), '_dinov2' for DINOv2 features; `kwargs`: MetricFamily's examples, description."""
    def make(name: str, groups: dict, *, truncation_psi: float = 1.0, **_) -> NeighbourMetric:
        num = parse_count(groups["count"])
        return in_feature_space(cls(name, num=num, max_real=200_000 if groups["full"] else num, k=int(groups["k"]),
                                    truncation_psi=truncation_psi), groups)
    return MetricFamily(family, family + r"{count}(?P<k>\d)(?P<full>_full)?" + SPACE_SUFFIX, make, **kwargs)


class PrecisionRecall(NeighbourMetric):
    """Precision: generated features inside the reference manifold; recall: reference features inside the
    generated one; each manifold the union of balls reaching every point's k-th nearest neighbour."""

    formula, results = staticmethod(precision_recall_from_arrays), ("precision", "recall")
    example = "pr50k3 = 50k images, k = 3"


FAMILY = neighbour_family(
    "pr", PrecisionRecall, examples=("pr50k3_full", "pr50k3"),
    description="precision and recall of VGG16 features, k nearest neighbours (the last digit); _full: up to "
                "200,000 reference images, else the first N; _<network>: another feature space (_dinov2: "
                "DINOv2 ViT-L/14)")
