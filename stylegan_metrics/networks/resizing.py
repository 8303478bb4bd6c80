"""How each registered feature network brings images of any size to its own input size: recorded in reference
statistics and named when generated and reference images differ in size."""

from __future__ import annotations

RESIZE_RULES: dict[str, str] = {
    "inception-v3": "TF1-compatible bilinear resize to 299x299 inside the network (torch-fidelity's)",
    "vgg16-fc2": "TF1-compatible bilinear resize to 224x224 inside the network (torch-fidelity's vgg16)",
    "toyfaces": "area (box) resize to the classifier's input size (32x32 bundled) unless already that size",
    **{f"dinov2-vit-{size}14": "bicubic resize with antialias of the float image to 224x224 inside the network "
                               "(EDM2's FD_DINOv2), then ImageNet normalisation" for size in "sblg"},
    **{f"dinov2-vit-{size}14-pil": "PIL BICUBIC resize of each uint8 image to 224x224 inside the network "
                                   "(dgm-eval's), then ImageNet normalisation" for size in "sblg"},
}
UNKNOWN_RULE = "a user's network: its own rule"


def resize_rule(network: str) -> str:
    """The resize rule of a registered feature network by name; UNKNOWN_RULE for any other."""
    return RESIZE_RULES.get(network, UNKNOWN_RULE)
