"""rosinality/stylegan2-pytorch checkpoints: their key names, shapes and formulas mapped onto arch='stylegan2'."""

import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stylegan_core import CheckpointError, load_generator
from stylegan_core.networks.fir import setup_filter
from stylegan_core.formats.sources import detect_source
from stylegan_metrics_cli.main import main
from helpers import same_images, tiny_stylegan2

SQRT2 = math.sqrt(2)
LR_MLP = 0.01

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU


def rosinality_state(G):
    """Our G under rosinality's g_ema names and shapes (their EqualLinear / ModulatedConv2d parametrization)."""
    sd = {}
    for i, layer in enumerate(G.mapping.layers):  # style.0 is PixelNorm; weight stored / lr_mul, scale lr_mul / sqrt(in)
        w_eff, b_eff = layer.weight * layer.weight_gain / SQRT2, layer.bias * layer.bias_gain / SQRT2
        sd[f"style.{i + 1}.weight"] = w_eff / (LR_MLP / math.sqrt(w_eff.shape[1]))
        sd[f"style.{i + 1}.bias"] = b_eff / LR_MLP
    sd["input.input"] = G.synthesis.const.clone()
    kernel = setup_filter() * 4  # make_kernel([1,3,3,1]) * factor ** 2

    def styled(prefix, layer, up):
        w = layer.conv.weight
        sd[f"{prefix}.conv.weight"] = (w * math.sqrt(w[0].numel()))[None]  # they scale by 1/sqrt(fan_in) at run time
        sd[f"{prefix}.conv.modulation.weight"] = layer.conv.affine.weight.clone()
        sd[f"{prefix}.conv.modulation.bias"] = layer.conv.affine.bias.clone()
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = kernel
        sd[f"{prefix}.noise.weight"] = layer.noise.strength.reshape(1).clone()
        sd[f"{prefix}.activate.bias"] = layer.bias.clone()

    def to_rgb(prefix, rgb, up):
        sd[f"{prefix}.conv.weight"] = rgb.conv.weight[None].clone()
        sd[f"{prefix}.conv.modulation.weight"] = rgb.conv.affine.weight.clone()
        sd[f"{prefix}.conv.modulation.bias"] = rgb.conv.affine.bias.clone()
        sd[f"{prefix}.bias"] = rgb.bias.view(1, -1, 1, 1).clone()
        if up:
            sd[f"{prefix}.upsample.kernel"] = kernel

    blocks = G.synthesis.blocks
    styled("conv1", blocks[0].conv1, False)
    to_rgb("to_rgb1", blocks[0].to_rgb, False)
    sd["noises.noise_0"] = blocks[0].conv1.noise.noise_const.clone()
    for b in range(1, len(blocks)):
        styled(f"convs.{2 * b - 2}", blocks[b].conv0, True)
        styled(f"convs.{2 * b - 1}", blocks[b].conv1, False)
        to_rgb(f"to_rgbs.{b - 1}", blocks[b].to_rgb, True)
        sd[f"noises.noise_{2 * b - 1}"] = blocks[b].conv0.noise.noise_const.clone()
        sd[f"noises.noise_{2 * b}"] = blocks[b].conv1.noise.noise_const.clone()
    return {k: v.detach().clone() for k, v in sd.items()}


def save_rosinality(path, G, latent_avg=True, **torch_save):
    ckpt = {"g_ema": rosinality_state(G), "g": rosinality_state(G), "d": {"convs.0.0.weight": torch.randn(2, 3, 1, 1)},
            "args": argparse.Namespace(size=G.img_resolution, latent=G.w_dim, n_mlp=len(G.mapping.layers))}
    if latent_avg:
        ckpt["latent_avg"] = G.mapping.w_avg.clone()
    torch.save(ckpt, path, **torch_save)
    return path


@pytest.mark.parametrize("zip_format", [True, False])
def test_their_names_load_with_identical_images(tmp_path, zip_format):
    G = tiny_stylegan2(seed=1)
    path = save_rosinality(tmp_path / "550000.pt", G, _use_new_zipfile_serialization=zip_format)
    assert detect_source(path) == "rosinality"
    loaded = load_generator(path)
    # every channel count is channel_max here, so any channel_base >= 16 * 16 fits: the default 32768 is taken
    assert {**loaded.config, "channel_base": 256} == G.config and not loaded.training
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {k: v.shape for k, v in G.state_dict().items()}
    same_images(loaded, G)
    same_images(loaded, G, psi=0.5)  # latent_avg became w_avg


def test_without_latent_avg_w_avg_is_the_seeded_mean_of_w(tmp_path):
    G = tiny_stylegan2(8, seed=2)
    loaded = load_generator(save_rosinality(tmp_path / "g.pt", G, latent_avg=False))
    same_images(loaded, G)
    z = torch.randn(4096, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.mapping.w_avg, G.mapping(z)[:, 0].mean(dim=0), rtol=1e-5, atol=1e-6)


def test_4px_generator_follows_their_formulas(tmp_path):
    """Mapping and b4 (conv1 + to_rgb1) by hand from their tensors, as their model.py computes them."""
    G = tiny_stylegan2(4, seed=3)
    sd = rosinality_state(G)
    loaded = load_generator(save_rosinality(tmp_path / "g.pt", G))
    z = torch.randn(2, G.z_dim)
    x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # PixelNorm, then EqualLinear + fused_lrelu
    for i in range(1, 3):
        w = sd[f"style.{i}.weight"]
        x = F.leaky_relu(F.linear(x, w * LR_MLP / math.sqrt(w.shape[1])) + sd[f"style.{i}.bias"] * LR_MLP, 0.2) * SQRT2

    def modulated(prefix, inp, w, demodulate):
        weight = sd[f"{prefix}.conv.weight"]                                 # [1, out, in, k, k]
        mod = sd[f"{prefix}.conv.modulation.weight"]
        style = F.linear(w, mod / math.sqrt(mod.shape[1]), sd[f"{prefix}.conv.modulation.bias"])
        weight = weight / math.sqrt(weight[0, 0].numel()) * style.view(1, 1, -1, 1, 1)
        if demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return F.conv2d(inp, weight[0], padding=weight.shape[-1] // 2)

    images = []
    for n in range(2):
        h = modulated("conv1", sd["input.input"], x[n:n + 1], True) + sd["conv1.noise.weight"] * sd["noises.noise_0"]
        h = F.leaky_relu(h + sd["conv1.activate.bias"].view(1, -1, 1, 1), 0.2) * SQRT2
        images.append(modulated("to_rgb1", h, x[n:n + 1], False) + sd["to_rgb1.bias"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, noise_mode="const"), torch.cat(images), rtol=1e-5, atol=1e-5)


def test_bad_checkpoints_give_one_clear_error(tmp_path):
    G = tiny_stylegan2(8)
    sd = rosinality_state(G)
    sd["convs.0.conv.blur.kernel"] = torch.ones(4, 4)  # a box filter, not [1,3,3,1]
    torch.save({"g_ema": sd}, tmp_path / "blur.pt")
    with pytest.raises(CheckpointError, match="not the \\[1,3,3,1\\] resampling filter"):
        load_generator(tmp_path / "blur.pt")
    sd = rosinality_state(G)
    sd["convs.0.conv.extra"] = torch.zeros(1)
    torch.save({"g_ema": sd}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match="unexpected parameter convs.0.conv.extra"):
        load_generator(tmp_path / "extra.pt")
    sd = rosinality_state(G)
    del sd["convs.1.activate.bias"]
    torch.save({"g_ema": sd}, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="missing parameter synthesis.b8.conv1.bias"):
        load_generator(tmp_path / "missing.pt")


class Payload:
    def __reduce__(self):
        return print, ("this must never run",)


def test_convert_cli_identical_images_and_refusals(tmp_path, capsys):
    G = tiny_stylegan2(seed=4)
    src = save_rosinality(tmp_path / "g.pt", G)
    out = tmp_path / "ours.pt"
    res = CliRunner().invoke(main, ["convert", str(src), str(out)])
    assert res.exit_code == 0 and "rosinality checkpoint" in res.output, res.output
    same_images(load_generator(out), G)
    assert detect_source(out) == "native"

    ckpt = {"g_ema": rosinality_state(G), "args": Payload()}  # anything beyond tensors and Namespace is refused
    torch.save(ckpt, tmp_path / "evil.pt")
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "evil.pt"), str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "refused to load: it references print" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and "must never run" not in capsys.readouterr().out
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "junk.pt"), str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "x.pt").exists()
