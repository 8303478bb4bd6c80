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


def _resolution_span(G, layers: list[int]) -> str:
    res = list(getattr(G.synthesis, "layer_resolutions", [4 * 2 ** (i // 2) for i in range(G.num_ws)]))
    found = sorted({res[min(i, len(res) - 1)] for i in layers})
    return f"{found[0]} px" if len(found) == 1 else f"{found[0]}-{found[-1]} px"


@torch.inference_mode()
def style_mixing_grid(G, path, *, num_columns: int = 5, seed: int = 0,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Fig. 3 of the paper: top row sources A; each row takes one group of styles (coarse, middle, fine)
    from its source B (left) and the rest from A. Constant noise, so only the styles differ. Each row is labelled
    with its mean absolute pixel difference from A (0..255); returns those, by group."""
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
    change = {}
    for i, (name, layers) in enumerate(groups.items()):
        mixed = ws_a.clone()
        mixed[:, layers] = ws_b[i:i + 1, layers]
        img_mixed = _images(G, mixed)  # uint8 [num_columns, C, H, W]
        change[name] = float((img_mixed.float() - img_a.float()).abs().mean())
        axes[i + 1, 0].imshow(hwc(img_b[i]))
        axes[i + 1, 0].text(-0.08, 0.5, f"B's {name} styles\n({_resolution_span(G, layers)})\nrow differs\nfrom A by "
                            f"{change[name]:.0f}/255", transform=axes[i + 1, 0].transAxes, ha="right", va="center",
                            fontsize=7)
        for j, img in enumerate(img_mixed):
            axes[i + 1, j + 1].imshow(hwc(img))
    fig.suptitle("style mixing: each row copies one group of styles of its B (left) into every A (top)", fontsize=8)
    save_figure(fig, path)
    return change


@torch.inference_mode()
def truncation_sweep(G, path, *, psis=(1.0, 0.7, 0.5, 0.0, -0.5, -1.0), rows: int = 4, seed: int = 0,
                     device: torch.device | str = "cpu") -> None:
    """Each row one latent; columns psi = 1 (none) ... 0 (the average face w_avg) ... -1 (the 'anti-face'),
    each labelled with its psi."""
    z = latents(seed, 0, rows, G.z_dim).to(device)
    columns = [_images(G, map_latents(G, z, psi)) for psi in psis]
    images = torch.stack(columns, dim=1).flatten(0, 1)  # [rows * len(psis), C, H, W]
    grid = _upscale(make_grid(images, len(psis)), _display_factor(G.img_resolution))  # [H, W, C] uint8
    fig, axes = new_figure(figsize=(1.1 * len(psis), 1.1 * rows + 0.4))
    ax = axes[0, 0]
    ax.imshow(grid.squeeze())
    side = grid.shape[1] / len(psis)
    ax.set_xticks([side * (k + 0.5) for k in range(len(psis))], [f"psi = {psi:g}" for psi in psis], fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    save_figure(fig, path)


def ppl_histograms(details: pd.DataFrame, results: dict[str, float], path, *, similarity: str = "lpips-vgg16") -> None:
    """Distances per space (one panel each), full and end overlaid, log-spaced bins, trimmed means marked;
    `similarity` names the network that measured the distances (the x axis)."""
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
        ax.set_xlabel(f"{similarity} distance / epsilon^2 (log scale)")
        ax.set_ylabel("pairs")
        ax.legend(fontsize=7)
    save_figure(fig, path)


def absent_attributes(details: pd.DataFrame) -> list[str]:
    """Attributes with positive rate 0 in every space: the classifier never saw them in the kept samples, so
    their H(Y|X) is 0 without any separation."""
    if "positive_rate" not in details:
        return []
    rates = details.groupby("attribute", sort=False).positive_rate.max()
    return [a for a, rate in rates.items() if rate == 0]


def ls_entropy(details: pd.DataFrame, path) -> None:
    """Conditional entropy H(Y|X) per attribute, one bar per space: lower = more linearly separable. Attributes
    that never occur (positive rate 0) are marked: their 0 bits say nothing about separability."""
    table = details.pivot(index="attribute", columns="space", values="entropy_bits")
    table = table.loc[details.attribute.drop_duplicates()]
    absent = set(absent_attributes(details))
    fig, axes = new_figure(figsize=(max(6, 0.3 * len(table)), 3.2))
    ax = axes[0, 0]
    width = 0.8 / len(table.columns)
    x = np.arange(len(table))
    for k, sp in enumerate(sorted(table.columns, reverse=True)):
        ax.bar(x + k * width, table[sp], width, label=f"{sp.upper()}: sum {table[sp].sum():.2f} bits")
    labels = [f"{a} (never occurs)" if a in absent else a for a in table.index]
    ax.set_xticks(x + width * (len(table.columns) - 1) / 2, labels, rotation=90, fontsize=7)
    for tick, a in zip(ax.get_xticklabels(), table.index):
        if a in absent:
            tick.set_color("tab:red")
    ax.set_ylabel("H(Y|X) [bits]")
    title = "linear separability per attribute (lower is better)"
    if absent:
        title += f"; red: {len(absent)} attributes with positive rate 0, so 0 bits without separation"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
