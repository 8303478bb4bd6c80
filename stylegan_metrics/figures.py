"""The figures of the StyleGAN paper for any generator: samples, style mixing, truncation, PPL and LS plots."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image

from stylegan_core.files import atomic_write
from stylegan_core.data.images import atomic_save_png, make_grid, to_uint8

from stylegan_metrics.engine.sampling import latents, map_latents, noise_seeds, synthesize


def new_figure(rows: int = 1, cols: int = 1, *, figsize: tuple[float, float]):
    """A matplotlib Figure and its axes, without pyplot: no global figure registry, no backend switch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """PNG through a temporary file and a rename."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def _upscale(grid: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return grid
    h, w = grid.shape[:2]
    return np.asarray(Image.fromarray(grid).resize((w * factor, h * factor), Image.NEAREST))


def _display_factor(resolution: int) -> int:
    return max(1, 64 // resolution)


@torch.inference_mode()
def _images(G, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    return to_uint8(G.synthesis(ws, noise_mode=noise_mode).float()).cpu()  # uint8 [N, C, H, W]


@torch.inference_mode()
def sample_grid(G, path, *, num: int = 32, cols: int = 8, seed: int = 0, truncation_psi: float = 1.0,
                device: torch.device | str = "cpu") -> None:
    """Samples 0..num-1 of `seed` exactly as the metrics draw them (latents and noise)."""
    ws = map_latents(G, latents(seed, 0, num, G.z_dim).to(device), truncation_psi)
    images = to_uint8(synthesize(G, ws, noise_seeds(seed, 0, num)).float()).cpu()
    atomic_save_png(_upscale(make_grid(images, cols), _display_factor(G.img_resolution)), path)


def layer_groups(G) -> dict[str, list[int]]:
    """Style layers by the resolution they act on: coarse (4-8 px), middle (16-32 px), fine (64 px and up).
    For generators of 32 px or less, fine is the last resolution and middle the ones between."""
    res = list(getattr(G.synthesis, "layer_resolutions", [4 * 2 ** (i // 2) for i in range(G.num_ws)]))
    res += [res[-1]] * (G.num_ws - len(res))
    coarse = [i for i, r in enumerate(res) if r <= 8]
    fine = [i for i, r in enumerate(res) if r >= 64] or [i for i, r in enumerate(res) if r == res[-1] and r > 8]
    middle = [i for i in range(G.num_ws) if i not in coarse and i not in fine]
    return {"coarse": coarse, "middle": middle, "fine": fine}


@torch.inference_mode()
def style_mixing_grid(G, path, *, num_columns: int = 5, seed: int = 0, device: torch.device | str = "cpu") -> None:
    """Fig. 3 of the paper: top row sources A; each row takes one group of styles (coarse, middle, fine)
    from its source B (left) and the rest from A. Constant noise, so only the styles differ."""
    groups = {k: v for k, v in layer_groups(G).items() if v}
    ws_a = map_latents(G, latents(seed, 0, num_columns, G.z_dim).to(device))
    ws_b = map_latents(G, latents(seed, num_columns, len(groups), G.z_dim).to(device))
    img_a, img_b = _images(G, ws_a), _images(G, ws_b)
    fig, axes = new_figure(len(groups) + 1, num_columns + 1, figsize=(1.3 * (num_columns + 1), 1.3 * (len(groups) + 1)))
    for ax in axes.flat:
        ax.axis("off")
    hwc = lambda t: t.permute(1, 2, 0).numpy().squeeze()  # noqa: E731
    for j in range(num_columns):
        axes[0, j + 1].imshow(hwc(img_a[j]))
        axes[0, j + 1].set_title(f"source A{j + 1}", fontsize=7)
    for i, (name, layers) in enumerate(groups.items()):
        mixed = ws_a.clone()
        mixed[:, layers] = ws_b[i:i + 1, layers]
        axes[i + 1, 0].imshow(hwc(img_b[i]))
        axes[i + 1, 0].set_title(f"B: {name}", fontsize=7)
        for j, img in enumerate(_images(G, mixed)):
            axes[i + 1, j + 1].imshow(hwc(img))
    fig.suptitle("style mixing: rows copy coarse / middle / fine styles of B into A", fontsize=8)
    save_figure(fig, path)


@torch.inference_mode()
def truncation_sweep(G, path, *, psis=(1.0, 0.7, 0.5, 0.0, -0.5, -1.0), rows: int = 4, seed: int = 0,
                     device: torch.device | str = "cpu") -> None:
    """Each row one latent; columns psi = 1 (none) ... 0 (the average face w_avg) ... -1 (the 'anti-face')."""
    z = latents(seed, 0, rows, G.z_dim).to(device)
    columns = [_images(G, map_latents(G, z, psi)) for psi in psis]
    images = torch.stack(columns, dim=1).flatten(0, 1)  # [rows * len(psis), C, H, W]
    atomic_save_png(_upscale(make_grid(images, len(psis)), _display_factor(G.img_resolution)), path)


def ppl_histograms(details: pd.DataFrame, results: dict[str, float], path) -> None:
    """Distances per space (one panel each), full and end overlaid, log-spaced bins, trimmed means marked."""
    spaces = sorted(details.space.unique(), reverse=True)
    fig, axes = new_figure(1, len(spaces), figsize=(4.2 * len(spaces), 3))
    positive = details.distance[details.distance > 0]
    bins = np.geomspace(max(positive.min(), 1e-6), max(positive.max(), 1e-5), 50) if len(positive) else 50
    for ax, sp in zip(axes[0], spaces):
        for sm, color in (("full", "tab:blue"), ("end", "tab:orange")):
            d = details[(details.space == sp) & (details.sampling == sm)].distance
            if len(d):
                ax.hist(d, bins=bins, alpha=0.55, color=color, label=f"{sm}: {results[f'ppl_{sp}{sm}']:.1f}")
                ax.axvline(results[f"ppl_{sp}{sm}"], color=color, lw=1)
        ax.set_xscale("log")
        ax.set_title(f"PPL distances in {sp.upper()}", fontsize=9)
        ax.set_xlabel("LPIPS / epsilon^2")
        ax.legend(fontsize=7)
    save_figure(fig, path)


def ls_entropy(details: pd.DataFrame, path) -> None:
    """Conditional entropy H(Y|X) per attribute, one bar per space: lower = more linearly separable."""
    table = details.pivot(index="attribute", columns="space", values="entropy_bits")
    table = table.loc[details.attribute.drop_duplicates()]
    fig, axes = new_figure(figsize=(max(6, 0.3 * len(table)), 3.2))
    ax = axes[0, 0]
    width = 0.8 / len(table.columns)
    x = np.arange(len(table))
    for k, sp in enumerate(sorted(table.columns, reverse=True)):
        ax.bar(x + k * width, table[sp], width, label=f"{sp.upper()}: sum {table[sp].sum():.2f} bits")
    ax.set_xticks(x + width * (len(table.columns) - 1) / 2, table.index, rotation=90, fontsize=7)
    ax.set_ylabel("H(Y|X) [bits]")
    ax.set_title("linear separability per attribute (lower is better)", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
