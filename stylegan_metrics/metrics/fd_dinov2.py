"""FD_DINOv2 as NVIDIA's EDM2 computes it: the Fréchet distance of DINOv2 ViT-L/14 features (the CLS token of images
resized to 224 as EDM2 resizes them), generated images against every reference image, covariance N - 1."""

from __future__ import annotations

from stylegan_metrics.engine.metric import MetricFamily, check_count, count_name, parse_count

from .fid import FID

EDM2_COUNT = 50_000  # generated images of EDM2's fd_dinov2
NETWORKS = {False: "dinov2-vit-l14", True: "dinov2-vit-l14-pil"}  # EDM2's resize_mode 'torch' and 'pil'


class FDDinov2(FID):
    """FID's computation in DINOv2 ViT-L/14 features; the evaluation's `features` option leaves it."""

    replaceable = False

    def __init__(
        self,
        name: str,                    # result name
        *,
        num: int,                     # generated images (EDM2: 50,000), against every reference image
        pil: bool = False,            # EDM2's 'pil' resize (dgm-eval's rule) instead of its 'torch' one
        truncation_psi: float = 1.0,
    ):
        super().__init__(name, num=num, max_real=None, cov="unbiased", truncation_psi=truncation_psi)
        self.network = NETWORKS[pil]


def fd_dinov2_name(num: int = EDM2_COUNT, pil: bool = False) -> str:
    """EDM2's 'fd_dinov2' (50,000 generated images), 'fd_dinov2_10k' for another count, '_pil' for EDM2's PIL
    resize (the dgm-eval reference rule)."""
    count = "" if check_count(num) == EDM2_COUNT else f"_{count_name(num)}"
    return f"fd_dinov2{count}{'_pil' if pil else ''}"


def _make(name: str, groups: dict, *, truncation_psi: float = 1.0, **_) -> FDDinov2:
    num = parse_count(groups["count"]) if groups["count"] else EDM2_COUNT
    pil = bool(groups["pil"])
    return FDDinov2(fd_dinov2_name(num, pil), num=num, pil=pil, truncation_psi=truncation_psi)


FAMILY = MetricFamily(
    "fd_dinov2", r"fd_dinov2(?:_{count})?(?P<pil>_pil)?", _make, examples=("fd_dinov2",),
    description="Fréchet distance of DINOv2 ViT-L/14 features (EDM2's): every reference image, covariance N - 1; "
                "_pil: EDM2's PIL resize")
