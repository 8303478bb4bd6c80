"""The `dinov2-vit-{s,b,l,g}14` feature networks: Meta's DINOv2 Vision Transformers, loaded key for key from Meta's
checkpoints, on uint8 images resized to 224 x 224 as EDM2's FD_DINOv2 ('torch') or dgm-eval ('pil') resizes them."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.weights import load_state_dict, resolve_weights, sha256_of

PATCH = 14                      # pixels per patch side
GRID = 37                       # position embeddings: the 37 x 37 patches of Meta's img_size 518, plus the CLS token
HEAD_WIDTH = 64                 # channels per attention head: heads = width / 64 (6, 12, 16, 24 for s, b, l, g)
EPS = 1e-6                      # every LayerNorm's
INTERPOLATE_OFFSET = 0.1        # Meta's position-embedding scale factor is (patches + 0.1) / 37
INPUT_SIZE = 224                # images are resized to INPUT_SIZE x INPUT_SIZE
MEAN = (0.485, 0.456, 0.406)    # ImageNet normalisation on [0, 1]
STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("torch", "pil")
ARCHS = {  # DinoViT's arguments for each of Meta's published backbones (heads = width / 64: 6, 12, 16, 24)
    "vit-s14": dict(width=384, depth=12, ffn="mlp"),
    "vit-b14": dict(width=768, depth=12, ffn="mlp"),
    "vit-l14": dict(width=1024, depth=24, ffn="mlp"),
    "vit-g14": dict(width=1536, depth=40, ffn="swiglu"),
}


def mlp_hidden(width: int, ffn: str) -> int:
    """Meta's hidden width: 4 D for the GELU MLP; 2/3 of that rounded up to a multiple of 8 for the fused SwiGLU."""
    hidden = int(width * 4.0)
    return hidden if ffn == "mlp" else (int(hidden * 2 / 3) + 7) // 8 * 8


class LayerScale(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.heads = width // HEAD_WIDTH
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                  # [N, T, D] -> [N, T, D]
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).unbind(2)  # [N, T, H, D/H] each
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # [N, H, T, D/H]
        return self.proj(x.transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))                              # exact (erf) GELU


class SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.w12 = nn.Linear(width, 2 * hidden)
        self.w3 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)                        # [N, T, hidden] each
        return self.w3(F.silu(gate) * value)


class Block(nn.Module):
    def __init__(self, width: int, ffn: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=EPS)
        self.attn = Attention(width)
        self.ls1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=EPS)
        self.mlp = (Mlp if ffn == "mlp" else SwiGLU)(width, mlp_hidden(width, ffn))
        self.ls2 = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                  # [N, 3, H, W] -> [N, H/14 * W/14, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoViT(nn.Module):
    """Meta's DinoVisionTransformer as its hub functions build it (patch 14, 37 x 37 position grid, LayerScale,
    no registers), with its state-dict keys: float images [N, 3, H, W] (H, W multiples of 14, ImageNet-normalised)
    -> the CLS token after the final norm [N, D], what the hub model's forward returns."""

    def __init__(
        self,
        *,
        width: int = 1024,    # token width D (ViT-S 384, B 768, L 1024, g 1536); heads of 64 channels each
        depth: int = 24,      # transformer blocks
        ffn: str = "mlp",     # feed-forward layers: 'mlp' (S, B, L) or 'swiglu' (g)
    ):
        super().__init__()
        if width % HEAD_WIDTH or ffn not in ("mlp", "swiglu"):
            raise ValueError(f"DINOv2 needs a width that is a multiple of {HEAD_WIDTH} and ffn 'mlp' or 'swiglu', "
                             f"not {width}, {ffn!r}")
        self.width, self.depth, self.ffn = width, depth, ffn
        self.patch_embed = PatchEmbed(width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + GRID * GRID, width))
        self.mask_token = nn.Parameter(torch.zeros(1, width))            # training only; loaded, never used
        self.blocks = nn.ModuleList(Block(width, ffn) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=EPS)

    def positions(self, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        """Position embeddings [1, 1 + rows * cols, D] of a rows x cols patch grid: the stored ones for 37 x 37;
        otherwise bicubic (no antialias) with scale factors ((rows + 0.1) / 37, (cols + 0.1) / 37), in float32,
        as Meta's interpolate_pos_encoding (the sampling follows the factors, not the output size)."""
        if rows == GRID and cols == GRID:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, GRID, GRID, self.width).permute(0, 3, 1, 2)          # [1, D, 37, 37]
        scale = (float(rows + INTERPOLATE_OFFSET) / GRID, float(cols + INTERPOLATE_OFFSET) / GRID)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", antialias=False)   # [1, D, rows, cols]
        if grid.shape[-2:] != (rows, cols):
            raise InputError(f"DINOv2 position grid {tuple(grid.shape[-2:])} instead of {(rows, cols)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, self.width)
        return torch.cat([pos[:, :1], grid], dim=1).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                  # [N, 3, H, W] -> [N, D]
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % PATCH or x.shape[3] % PATCH:
            raise InputError(f"DINOv2 takes images [N, 3, H, W] with H and W multiples of {PATCH}, got "
                             f"{list(x.shape)}")
        h, w = x.shape[2:]
        tokens = self.patch_embed(x)                                      # [N, T, D]
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.positions(h // PATCH, w // PATCH, tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0])                                    # LayerNorm is per token: CLS alone


def architecture_of(state: dict[str, torch.Tensor]) -> dict:
    """DinoViT's keyword arguments read off a state dict in Meta's layout: width, depth, MLP or SwiGLU."""
    if "cls_token" not in state or "blocks.0.norm1.weight" not in state:
        raise InputError("not a DINOv2 state dict in Meta's layout (no cls_token or blocks.0.norm1.weight)")
    depth = 0
    while f"blocks.{depth}.norm1.weight" in state:
        depth += 1
    ffn = "swiglu" if "blocks.0.mlp.w12.weight" in state else "mlp"
    width = int(state["cls_token"].shape[-1]) if state["cls_token"].ndim else 0
    return dict(width=width, depth=depth, ffn=ffn)


def load_dinov2(state: dict[str, torch.Tensor]) -> DinoViT:
    """A DinoViT holding `state` (Meta's keys, strictly: nothing missing, nothing extra, every shape), float32."""
    arch = architecture_of(state)
    try:
        with torch.device("meta"):
            vit = DinoViT(**arch)
        vit.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    except (RuntimeError, ValueError) as e:
        raise InputError(f"DINOv2 weights do not match Meta's layout for {arch} ({e})") from None
    return vit.requires_grad_(False).eval()


def preprocess(images: torch.Tensor, *, resize: str = "torch") -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float32 [N, 3, 224, 224], ImageNet-normalised. 'torch' (EDM2's FD_DINOv2): bicubic
    with antialias on the float image, then / 255, - mean, / std. 'pil' (dgm-eval's, EDM2's 'pil' mode): each image
    resized by PIL's BICUBIC as uint8, then the same normalisation."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"DINOv2 takes uint8 images [N, 3, H, W], got {images.dtype} {list(images.shape)}")
    if resize == "torch":
        x = F.interpolate(images.float(), size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True)
    elif resize == "pil":
        from PIL import Image

        hwc = images.permute(0, 2, 3, 1).cpu().numpy()                   # [N, H, W, 3] uint8
        resized = [np.asarray(Image.fromarray(np.ascontiguousarray(im)).resize(
            (INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)) for im in hwc]
        x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).to(images.device).float()
    else:
        raise InputError(f"DINOv2 resize mode {resize!r}: expected one of {', '.join(RESIZE_MODES)}")
    x = x / 255
    x = x - torch.tensor(MEAN, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)
    return x / torch.tensor(STD, dtype=torch.float32, device=x.device).reshape(1, -1, 1, 1)


class DinoV2Features(nn.Module):
    """uint8 images [N, 3, H, W] of any size -> DINOv2's CLS token [N, D] (EDM2's FD_DINOv2 features)."""

    def __init__(self, vit: DinoViT, *, resize: str = "torch"):
        super().__init__()
        if resize not in RESIZE_MODES:
            raise InputError(f"DINOv2 resize mode {resize!r}: expected one of {', '.join(RESIZE_MODES)}")
        self.vit, self.resize = vit, resize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(preprocess(images, resize=self.resize))


def build_dinov2(
    weights: str | os.PathLike | None,  # None: Meta's file of `arch` (cache or download); else this file
    device: torch.device,
    *,
    arch: str = "vit-l14",              # a key of ARCHS
    resize: str = "torch",              # 'torch' (EDM2) or 'pil' (dgm-eval)
) -> tuple[nn.Module, str]:
    """The registry's `dinov2-<arch>` (resize 'torch') and `dinov2-<arch>-pil` networks."""
    name = f"dinov2-{arch}"
    path = resolve_weights(name, weights)
    state = load_state_dict(path)
    found = architecture_of(state)
    if found != ARCHS[arch]:
        raise InputError(f"{path}: a DINOv2 of {found}, but {name} is {ARCHS[arch]}")
    vit = load_dinov2(state)
    module = DinoV2Features(vit, resize=resize).to(device)
    return module, f"{name}{'-pil' if resize == 'pil' else ''}:{sha256_of(path)[:16]}"
