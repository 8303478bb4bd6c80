"""Generator protocol, style mixing and determinism of the StyleGAN1 networks."""

import pytest
import torch

from stylegan_core import Discriminator, Generator, mix_styles
from helpers import tiny_generator


@pytest.mark.parametrize("resolution", [8, 32, 64])
def test_protocol_shapes(resolution):
    G = Generator(z_dim=24, w_dim=40, img_resolution=resolution, img_channels=3, mapping_layers=3,
                  channel_base=512, channel_max=24)
    assert (G.z_dim, G.w_dim, G.img_resolution, G.img_channels) == (24, 40, resolution, 3)
    assert G.num_ws == {8: 4, 32: 8, 64: 10}[resolution]
    ws = G.mapping(torch.randn(3, 24), None, truncation_psi=0.7, truncation_cutoff=None)
    assert ws.shape == (3, G.num_ws, 40)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (3, 3, resolution, resolution) and img.dtype == torch.float32
    # channel rule min(channel_base // res, channel_max): layers 2k, 2k+1 run at 4 * 2**k px
    for i, layer in enumerate(G.synthesis.layers):
        res = 4 * 2 ** (i // 2)
        assert layer.adain.affine.weight.shape[0] == 2 * min(512 // res, 24)
    D = Discriminator(img_resolution=resolution, channel_base=512, channel_max=24)
    assert D(img).shape == (3, 1)


def test_grayscale_and_bad_shapes():
    G = tiny_generator(8, img_channels=1)
    assert G(torch.randn(2, 16)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="z must have shape"):
        G.mapping(torch.randn(2, 15), None)
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(2, G.num_ws + 1, 16))
    with pytest.raises(ValueError, match="power of two"):
        Generator(img_resolution=48)
    with pytest.raises(ValueError, match="unknown arch"):
        Generator(img_resolution=8, arch="stylegan9")


def test_same_seed_same_images_and_noise_modes():
    a, b = tiny_generator(16, seed=3), tiny_generator(16, seed=3)
    with torch.no_grad():  # give the noise a visible strength
        for G in (a, b):
            for layer in G.synthesis.layers:
                layer.noise.strength.fill_(0.5)
    z = torch.randn(4, 16)
    assert torch.equal(a(z, noise_mode="const"), b(z, noise_mode="const"))
    assert torch.equal(a(z, noise_mode="const"), a(z, noise_mode="const"))
    assert torch.equal(a(z, noise_mode="none"), b(z, noise_mode="none"))
    assert not torch.equal(a(z, noise_mode="random"), a(z, noise_mode="random"))
    torch.manual_seed(11)
    r1 = a(z, noise_mode="random")
    torch.manual_seed(11)
    assert torch.equal(r1, a(z, noise_mode="random"))


def test_mix_styles_layers():
    ws, other = torch.zeros(3, 6, 2), torch.ones(3, 6, 2)
    mixed = mix_styles(ws, other, 2)
    assert mixed[:, :2].eq(0).all() and mixed[:, 2:].eq(1).all()
    per_sample = mix_styles(ws, other, torch.tensor([1, 3, 5]))
    assert per_sample[:, :, 0].tolist() == [[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1]]


def _style_near_identity(G: Generator, damp: float = 0.1) -> Generator:
    """Scale the style affines down so that 1 + s stays near 1, the regime of trained networks."""
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.adain.affine.weight.mul_(damp)
    return G


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_style_mixing_fine_layers_change_less_than_coarse(seed):
    G = _style_near_identity(tiny_generator(32, seed=seed, channel_base=512, channel_max=32, z_dim=32, w_dim=32))
    torch.manual_seed(100 + seed)
    w1, w2 = G.mapping(torch.randn(64, 32), None), G.mapping(torch.randn(64, 32), None)
    base = G.synthesis(w1, noise_mode="const")
    k = 2  # one block's worth of styles
    coarse = G.synthesis(mix_styles(w2, w1, k), noise_mode="const")            # layers [0, k) from w2
    fine = G.synthesis(mix_styles(w1, w2, G.num_ws - k), noise_mode="const")   # last k layers from w2
    change_coarse = (coarse - base).abs().mean()
    change_fine = (fine - base).abs().mean()
    assert change_fine < 0.5 * change_coarse


def test_fine_styles_touch_only_the_last_block():
    """Exact: swapping the last block's two ws leaves every earlier activation bit-identical."""
    G = tiny_generator(16, seed=0)
    w1, w2 = G.mapping(torch.randn(4, 16), None), G.mapping(torch.randn(4, 16), None)
    acts = {}

    def record(name):
        return lambda module, inputs, output: acts.setdefault(name, []).append(output)

    for i, layer in enumerate(G.synthesis.layers):
        layer.register_forward_hook(record(i))
    G.synthesis(w1, noise_mode="const")
    G.synthesis(mix_styles(w1, w2, G.num_ws - 2), noise_mode="const")
    for i in range(G.num_ws):
        same = torch.equal(acts[i][0], acts[i][1])
        assert same == (i < G.num_ws - 2), f"layer {i}"
