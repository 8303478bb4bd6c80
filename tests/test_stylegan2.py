"""StyleGAN2 networks and training: demodulation, FIR resampling, style indexing, path length, lazy regularization."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stylegan_core import Generator, ImageDataset, ResidualDiscriminator, Trainer, TrainingOptions, load_checkpoint, train
from stylegan_core.networks.fir import conv2d_down2, conv2d_up2, downsample2d, setup_filter, upfirdn2d, upsample2d
from stylegan_core.training.lazy_regularization import make_optimizers
from stylegan_core.networks.modulated import ModulatedToRGB, SynthesisLayer, modulated_conv2d
from stylegan_core.training.path_length import path_length_penalty
from stylegan_metrics import ppl
from stylegan_metrics.engine.sampling import generate_batches, supports_noise_seeds
from stylegan_metrics_cli.main import main
from helpers import tiny_generator

TINY2 = dict(resolution=8, batch=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
             arch="stylegan2")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU


def noisy_stylegan2(resolution=16, strength=0.5):
    G = tiny_generator(resolution, arch="stylegan2")
    with torch.no_grad():
        for block in G.synthesis.blocks:
            for layer in (block.conv0, block.conv1):
                if layer is not None:
                    layer.noise.strength.fill_(strength)
    return G


# ---- modulated convolution -----------------------------------------------------------------------------
def test_demodulation_gives_unit_output_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 66, 66, generator=g)
    weight = torch.randn(32, 64, 3, 3, generator=g)
    styles = torch.randn(4, 64, generator=g) * 3 + 1
    y = modulated_conv2d(x, weight, styles, demodulate=True)[:, :, 1:-1, 1:-1]  # interior: no zero padding
    var = y.var(dim=(2, 3))                                                      # [N, out]
    assert abs(var.mean().item() - 1) < 0.03 and var.min() > 0.85 and var.max() < 1.15, var
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1]
    assert raw.var(dim=(2, 3)).mean() > 50  # without demodulation the variance is sum w'^2, far from 1


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_and_per_sample_paths_agree(up, demodulate):
    g = torch.Generator().manual_seed(1)
    x, w, s = torch.randn(3, 5, 6, 6, generator=g), torch.randn(7, 5, 3, 3, generator=g), torch.randn(3, 5, generator=g)
    f = setup_filter()
    fused = modulated_conv2d(x, w, s, demodulate, up, f, fused=True)
    split = modulated_conv2d(x, w, s, demodulate, up, f, fused=False)
    torch.testing.assert_close(fused, split, rtol=1e-5, atol=1e-5)
    for n in range(3):  # by hand: sample n's own kernel w * s_n, demodulated per output channel
        wn = w * s[n].view(1, -1, 1, 1)
        if demodulate:
            wn = wn / wn.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        ref = conv2d_up2(x[n:n + 1], wn, f) if up else F.conv2d(x[n:n + 1], wn, padding=1)
        torch.testing.assert_close(fused[n:n + 1], ref, rtol=1e-5, atol=1e-5)


# ---- FIR filters ----------------------------------------------------------------------------------------
def taps_1d_up(x, i):
    """Output i of 1-D x2 upsampling with [1,3,3,1]: even 2k -> .25 x[k-1] + .75 x[k], odd -> .75 x[k] + .25 x[k+1]."""
    get = lambda k: x[k] if 0 <= k < len(x) else 0.0  # noqa: E731
    k = i // 2
    return 0.25 * get(k - 1) + 0.75 * get(k) if i % 2 == 0 else 0.75 * get(k) + 0.25 * get(k + 1)


def test_fir_upsample_and_downsample_by_hand():
    x = np.random.RandomState(0).randn(5, 6)
    t = torch.from_numpy(x)[None, None]
    up = upsample2d(t, setup_filter().double())[0, 0].numpy()
    rows = np.array([[taps_1d_up(x[:, c], i) for c in range(6)] for i in range(10)])  # upsample columns
    hand_up = np.array([[taps_1d_up(rows[i], j) for j in range(12)] for i in range(10)])
    np.testing.assert_allclose(up, hand_up, rtol=1e-12)

    x = np.random.RandomState(1).randn(6, 8)
    down = downsample2d(torch.from_numpy(x)[None, None], setup_filter().double())[0, 0].numpy()
    xp = np.pad(x, 1)  # (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8 on both axes, zero outside
    k = np.array([1, 3, 3, 1]) / 8
    hand_down = np.array([[sum(k[a] * k[b] * xp[2 * i + a, 2 * j + b] for a in range(4) for b in range(4))
                           for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(down, hand_down, rtol=1e-12)


def test_resampling_convolutions_match_their_definitions():
    g = torch.Generator().manual_seed(2)
    x, w, f = torch.randn(2, 3, 5, 5, generator=g), torch.randn(4, 3, 3, 3, generator=g), setup_filter()
    # up (NVIDIA's generic path): zero insertion, pad (3, 2), FIR with gain 4, then a valid true convolution
    up = conv2d_up2(x, w, f)
    torch.testing.assert_close(up, F.conv2d(upfirdn2d(x, f, up=2, pad=(3, 2), gain=4), w.flip([2, 3])),
                               rtol=1e-5, atol=1e-5)
    inner = F.conv2d(upsample2d(x, f), w.flip([2, 3]), padding=1)  # away from the border: upsample2d, then conv
    torch.testing.assert_close(up[..., 1:-1, 1:-1], inner[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    # down: pad by 2, conv, then FIR + keep every other pixel (filter and conv commute)
    x8 = torch.randn(2, 3, 8, 8, generator=g)
    ref = upfirdn2d(F.conv2d(F.pad(x8, [2, 2, 2, 2]), w), f, down=2)
    torch.testing.assert_close(conv2d_down2(x8, w, f), ref, rtol=1e-5, atol=1e-5)
    w1 = torch.randn(4, 3, 1, 1, generator=g)  # 1x1 skip: filter-downsample then 1x1 conv
    torch.testing.assert_close(conv2d_down2(x8, w1, f), F.conv2d(downsample2d(x8, f), w1), rtol=1e-5, atol=1e-5)


# ---- generator and discriminator --------------------------------------------------------------------------
def test_protocol_and_nvidia_style_indexing():
    G = tiny_generator(16, arch="stylegan2")
    assert G.num_ws == 6 and G.synthesis.layer_resolutions == [4, 8, 8, 16, 16]
    assert G.config["arch"] == "stylegan2" and "conv_clamp" not in G.config
    ws = torch.randn(2, 6, 16)
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.append((name, args[1])))
             for name, m in G.synthesis.named_modules() if isinstance(m, (SynthesisLayer, ModulatedToRGB))]
    img = G.synthesis(ws, noise_mode="const")
    for h in hooks:
        h.remove()
    assert img.shape == (2, 3, 16, 16)
    # NVIDIA: b4 conv1 ws[0], torgb ws[1]; b8 conv0 ws[1], conv1 ws[2], torgb ws[3]; b16 conv0 ws[3], ...
    expected = {"blocks.0.conv1": 0, "blocks.0.to_rgb": 1, "blocks.1.conv0": 1, "blocks.1.conv1": 2,
                "blocks.1.to_rgb": 3, "blocks.2.conv0": 3, "blocks.2.conv1": 4, "blocks.2.to_rgb": 5}
    assert sorted(name for name, _ in seen) == sorted(expected)
    for name, w in seen:
        assert torch.equal(w, ws[:, expected[name]]), name
    D = ResidualDiscriminator(img_resolution=16, channel_base=256, channel_max=16)
    assert D(img).shape == (2, 1)
    with pytest.raises(ValueError, match="conv_clamp applies"):
        Generator(img_resolution=8, conv_clamp=256)


def test_conv_clamp_bounds_every_layer_output():
    outputs = {}

    def run(G):
        hooks = [m.register_forward_hook(lambda mod, args, out, name=name: outputs.__setitem__(name, out))
                 for name, m in G.synthesis.named_modules() if isinstance(m, (SynthesisLayer, ModulatedToRGB))]
        with torch.no_grad():
            G(torch.randn(4, 16, generator=torch.Generator().manual_seed(0)), noise_mode="const")
        for h in hooks:
            h.remove()
        return dict(outputs)

    clamped, free = tiny_generator(8, arch="stylegan2", conv_clamp=0.5), tiny_generator(8, arch="stylegan2")
    assert clamped.config["conv_clamp"] == 0.5
    a, b = run(clamped), run(free)
    assert all(t.abs().max() <= 0.5 for t in a.values()) and max(t.abs().max() for t in b.values()) > 0.5
    first = "blocks.0.conv1"  # same input (the constant): the clamped output is the clamp of the free one
    torch.testing.assert_close(a[first], b[first].clamp(-0.5, 0.5))


def test_noise_modes_and_per_sample_noise_for_metrics():
    G = noisy_stylegan2()
    z = torch.randn(3, 16)
    with torch.no_grad():
        ws = G.mapping(z)
        assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
        assert not torch.allclose(G.synthesis(ws, noise_mode="none"), G.synthesis(ws, noise_mode="const"))
        seeds = torch.tensor([5, 6, 7])
        a = G.synthesis(ws, noise_seeds=seeds)
        b = G.synthesis(ws[1:], noise_seeds=seeds[1:])  # sample 1's noise depends on its seed only
        torch.testing.assert_close(a[1:], b, rtol=1e-5, atol=1e-6)
    assert supports_noise_seeds(G)
    cpu = torch.device("cpu")
    x = torch.cat([b.images for b in generate_batches(G, 10, batch_size=3, seed=1, device=cpu)])
    y = torch.cat([b.images for b in generate_batches(G, 10, batch_size=10, seed=1, device=cpu)])
    assert torch.equal(x, y)


def test_ppl_runs_on_stylegan2_independent_of_batch_size():
    G = noisy_stylegan2()
    l2 = lambda a, b: (a - b).square().flatten(1).sum(dim=1)  # noqa: E731
    kw = dict(space="both", sampling="full", num_samples=12, similarity=l2, device="cpu", progress=False)
    a, b = ppl(G, batch_size=5, **kw), ppl(G, batch_size=12, **kw)
    assert a.results == b.results and all(v > 0 for v in a.results.values())


# ---- training ----------------------------------------------------------------------------------------------
def test_path_length_penalty_by_hand():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(2, 3, 1, 2, 2, generator=g, dtype=torch.float64).requires_grad_()  # img = sum_kd ws[n,k,d] A[k,d]
    ws = torch.randn(2, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    images = torch.einsum("nkd,kdchw->nchw", ws, A)
    y = torch.randn(2, 1, 2, 2, generator=g, dtype=torch.float64)
    penalty, lengths, new_mean = path_length_penalty(images, ws, torch.tensor(0.5, dtype=torch.float64), 0.01, noise=y)
    a, yn = A.detach().numpy(), y.numpy()
    expected = []
    for n in range(2):  # d(img . y)/dws[n,k,d] = sum_chw A[k,d,c,h,w] y[n,c,h,w]
        grad = np.array([[np.sum(a[k, d] * yn[n]) for d in range(3)] for k in range(2)])
        expected.append(np.sqrt(np.mean(np.sum(grad ** 2, axis=1))))
    np.testing.assert_allclose(lengths.detach().numpy(), expected, rtol=1e-12)
    mean = 0.5 + 0.01 * (np.mean(expected) - 0.5)
    assert abs(new_mean.item() - mean) < 1e-12
    np.testing.assert_allclose(penalty.detach().numpy(), (np.array(expected) - mean) ** 2, rtol=1e-12)
    (grad_a,) = torch.autograd.grad(penalty.sum(), A)  # create_graph: the penalty trains the "generator" A
    assert grad_a.abs().sum() > 0


def test_lazy_regularization_adjusts_adam_and_keeps_stylegan_runs():
    opts = TrainingOptions(**TINY2)
    assert (opts.r1_interval, opts.pl_weight, opts.pl_interval, opts.pl_decay, opts.pl_batch_shrink) == (16, 2.0, 4, 0.01, 2)
    G, D = Generator(**opts.generator_config()), ResidualDiscriminator(**opts.discriminator_config())
    G_opt, D_opt = make_optimizers(G, D, opts)
    assert G_opt.defaults["lr"] == pytest.approx(0.002 * 4 / 5) and D_opt.defaults["lr"] == pytest.approx(0.002 * 16 / 17)
    assert G_opt.defaults["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    assert D_opt.defaults["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    # an old stylegan run's options (saved before these fields existed) read back unchanged
    old = TrainingOptions(resolution=8).to_dict()
    for key in ("arch", "pl_weight", "pl_interval", "pl_decay", "pl_batch_shrink"):
        old.pop(key)
    back = TrainingOptions.from_dict(old)
    assert (back.arch, back.r1_interval, back.channel_base, back.pl_weight) == ("stylegan", 1, 16384, 0.0)
    G1 = Generator(z_dim=16, w_dim=16, img_resolution=8, channel_base=128, channel_max=16, mapping_layers=2)
    s_opt, _ = make_optimizers(G1, D, back)
    assert s_opt.defaults["lr"] == 0.002 and s_opt.defaults["betas"] == (0.0, 0.99)


def test_short_stylegan2_run_moves_mean_color_toward_data(flat_folder, tmp_path):
    ds = ImageDataset(flat_folder, resolution=8)
    data_mean = torch.stack([ds[i][0] for i in range(len(ds))]).float().div(127.5).sub(1).mean(dim=(0, 2, 3))

    def mean_color(G):
        with torch.no_grad():
            return G(torch.randn(256, G.z_dim, generator=torch.Generator().manual_seed(1))).mean(dim=(0, 2, 3))

    trainer = Trainer(TrainingOptions(kimg=1.5, ema_kimg=0.1, snap_kimg=100, **TINY2), ds, tmp_path / "run")
    assert isinstance(trainer.D, ResidualDiscriminator)
    before = (mean_color(trainer.G_ema) - data_mean).norm().item()
    trainer.train(progress=False)
    after = (mean_color(trainer.G_ema) - data_mean).norm().item()
    assert after < 0.5 * before, (before, after)
    assert trainer.pl_mean > 0  # path length regularization ran and tracked its mean


def test_stylegan2_resume_continues_the_same_run(flat_folder, tmp_path):
    opts = TrainingOptions(kimg=0.096, snap_kimg=100, **TINY2)  # 6 steps: PL at steps 0 and 4, R1 at step 0
    straight = train(flat_folder, tmp_path / "a", opts, progress=False)
    train(flat_folder, tmp_path / "b", dataclasses.replace(opts, kimg=0.048), progress=False)
    resumed = train(flat_folder, tmp_path / "b", opts, resume=True, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["config"]["G"]["arch"] == "stylegan2" and torch.equal(a["pl_mean"], b["pl_mean"])
    for part in ("G", "G_ema", "D"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)


def test_cli_train_arch_stylegan2(flat_folder, tmp_path):
    tiny = ["--resolution", "8", "--batch", "16", "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2",
            "--cbase", "128", "--cmax", "16", "--no-progress"]
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--arch", "stylegan2", "--data", str(flat_folder), "--kimg", "0.032",
                                    "--out", str(run), *tiny])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(run / "network-snapshot-000000.pt")
    training = ckpt["config"]["training"]
    assert (training["arch"], training["r1_interval"], training["pl_weight"]) == ("stylegan2", 16, 2.0)
    assert ckpt["config"]["G"]["arch"] == "stylegan2" and "from_rgb.weight" in ckpt["D"]
    res = CliRunner().invoke(main, ["train", "--pl-weight", "1", "--data", str(flat_folder), "--kimg", "0.032",
                                    "--out", str(tmp_path / "r2"), *tiny])
    assert res.exit_code == 2 and "needs arch='stylegan2'" in res.output
