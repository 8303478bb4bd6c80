"""StyleGAN2 synthesis network (config F): learned constant, modulated convolutions, skip generator with ToRGB per block."""

from __future__ import annotations

import math

import torch
from torch import nn

from stylegan_core.networks.fir import setup_filter, upsample2d
from stylegan_core.networks.modulated import ModulatedToRGB, SynthesisLayer
from stylegan_core.networks.synthesis import SynthesisBase, channels_at


class SynthesisBlock(nn.Module):
    """One resolution: [x2 up-conv] -> conv -> ToRGB; the incoming image is FIR-upsampled and the ToRGB output added."""

    def __init__(
        self,
        in_channels: int,                  # Channels of the previous block; 0 = first block (4x4, fed the constant).
        out_channels: int,                 # Channels of this block.
        w_dim: int,                        # Width of w.
        resolution: int,                   # Side of this block's feature maps and image.
        img_channels: int,                 # Image channels.
        conv_clamp: float | None = None,   # Clamp conv outputs to +-X; None = off.
    ):
        super().__init__()
        self.resolution = resolution
        self.conv0 = (SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
                      if in_channels else None)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.to_rgb = ModulatedToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 2 if in_channels else 1

    def forward(
        self,
        x: torch.Tensor,                    # [N, in, res/2, res/2] (or the constant [N, out, 4, 4])
        img: torch.Tensor | None,           # [N, img_channels, res/2, res/2] or None for the first block
        ws: torch.Tensor,                   # [N, num_conv + 1, w_dim]: the convs' ws, then ToRGB's
        noise_mode: str,
        noise: list,                        # num_conv entries: [N, 1, res, res] or None
        fused: bool,
        resample_filter: torch.Tensor,      # [4, 4]
    ) -> tuple[torch.Tensor, torch.Tensor]:  # x [N, out, res, res], img [N, img_channels, res, res]
        if self.conv0 is not None:
            x = self.conv0(x, ws[:, 0], noise_mode, noise[0], fused=fused, resample_filter=resample_filter)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode, noise[-1], fused=fused)
        y = self.to_rgb(x, ws[:, self.num_conv], fused=fused)
        img = y if img is None else upsample2d(img, resample_filter) + y
        return x, img


class SkipSynthesisNetwork(SynthesisBase):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R], NVIDIA's StyleGAN2 'skip' synthesis."""

    def __init__(
        self,
        w_dim: int,                        # Width of w.
        img_resolution: int,               # Output side, a power of two >= 4.
        img_channels: int,                 # Output channels.
        channel_base: int = 32768,         # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int = 512,            # Upper bound on channels.
        conv_clamp: float | None = None,   # Clamp conv outputs to +-X (NVIDIA uses 256 with fp16); None = off.
    ):
        super().__init__(w_dim, img_resolution, img_channels)
        resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        c4 = channels_at(4, channel_base, channel_max)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        blocks, in_channels = [], 0
        for res in resolutions:
            out_channels = channels_at(res, channel_base, channel_max)
            blocks.append(SynthesisBlock(in_channels, out_channels, w_dim, res, img_channels, conv_clamp))
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.layer_resolutions = [b.resolution for b in blocks for _ in range(b.num_conv)]  # one per conv (noise input)
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(
        self,
        ws: torch.Tensor,                          # [N, num_ws, w_dim]
        noise_mode: str = "random",                # 'random', 'const' or 'none'
        noise_seeds: torch.Tensor | None = None,   # [N] int: per-sample seeds of the 'random' noise
        fused_modconv: bool | None = None,         # Grouped per-sample conv; None = at inference only (as NVIDIA).
    ) -> torch.Tensor:                             # [N, img_channels, R, R]
        noise = self.noise_inputs(ws, noise_mode, noise_seeds)  # one entry per conv layer (seeding as StyleGAN1's)
        fused = not self.training if fused_modconv is None else fused_modconv
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        img = None
        i = 0  # index of the block's first conv layer, in ws and in the noise list
        for block in self.blocks:
            block_ws = ws[:, i:i + block.num_conv + 1]  # ToRGB shares its w with the next block's first conv
            x, img = block(x, img, block_ws, noise_mode, noise[i:i + block.num_conv], fused, self.resample_filter)
            i += block.num_conv
        return img
