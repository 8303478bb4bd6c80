"""Perceptual path length: interpolation, crop windows, an analytic case, LPIPS parity, determinism."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import torch
from click.testing import CliRunner

from stylegan_core import InputError, save_checkpoint
from stylegan_metrics import ppl
from stylegan_metrics.formulas.paths import box_downsample, crop_face, downsample_factor, lerp, slerp, trimmed_mean
from stylegan_metrics_cli.main import main
from helpers import tiny_generator


def squared_l2(a, b):
    return (a - b).square().flatten(1).sum(dim=1)


def test_slerp_endpoints_unit_norm_and_constant_angular_speed():
    torch.manual_seed(0)
    a, b = torch.randn(5, 32, dtype=torch.float64), torch.randn(5, 32, dtype=torch.float64)
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, torch.zeros(5, 1, dtype=torch.float64)), na)
    torch.testing.assert_close(slerp(a, b, torch.ones(5, 1, dtype=torch.float64)), nb)
    theta = torch.acos((na * nb).sum(dim=1))
    for t in (0.1, 0.37, 0.8):
        p = slerp(a, b, torch.full((5, 1), t, dtype=torch.float64))
        torch.testing.assert_close(p.norm(dim=1), torch.ones(5, dtype=torch.float64))
        torch.testing.assert_close(torch.acos((na * p).sum(dim=1).clamp(-1, 1)), t * theta)
        torch.testing.assert_close(torch.acos((p * nb).sum(dim=1).clamp(-1, 1)), (1 - t) * theta)


def test_lerp_hand_formula():
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -2.0]])
    torch.testing.assert_close(lerp(a, b, torch.tensor([[0.25]])), torch.tensor([[1.5, 1.0]]))


@pytest.mark.parametrize("size,rows,cols", [(1024, (384, 896), (256, 768)), (64, (24, 56), (16, 48))])
def test_crop_window_exact_indices(size, rows, cols):
    r = torch.arange(size).view(1, 1, size, 1).expand(1, 1, size, size)
    c = torch.arange(size).view(1, 1, 1, size).expand(1, 1, size, size)
    img = torch.cat([r, c], dim=1).float()
    out = crop_face(img)
    assert out[0, 0, :, 0].tolist() == list(range(*rows))
    assert out[0, 1, 0, :].tolist() == list(range(*cols))


def test_downsample_rules():
    assert downsample_factor(512, 1024, "stylegan1") == 2      # crop of 1024 -> 512 -> 256
    assert downsample_factor(512, 1024, "ada") == 4            # stylegan2-ada: 1024 // 256 -> 128
    assert downsample_factor(32, 64, "stylegan1") == 1 and downsample_factor(32, 64, "ada") == 1
    assert downsample_factor(256, 256, "stylegan1") == 1       # only crops larger than 256
    x = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(box_downsample(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_trimmed_mean_by_hand():
    d = np.arange(1, 201, dtype=float)  # positions 1.99 -> lower d[1] = 2; 197.01 -> higher d[198] = 199
    assert trimmed_mean(d) == pytest.approx(np.arange(2, 200).mean())
    d[50] = 1e9  # an outlier is dropped
    assert trimmed_mean(d) < 200


class LinearGenerator:
    """Mapping = identity, synthesis = a * w reshaped to a 1x4x4 image: PPL has a closed form."""

    z_dim = w_dim = 16
    num_ws, img_resolution, img_channels = 2, 4, 1

    def __init__(self, a):
        self.a = a

    def mapping(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        return z[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="random"):
        return self.a * ws[:, 0].reshape(-1, 1, 4, 4)


def closed_form_w(a, d=16):
    """W: distance = a^2 ||z1 - z0||^2 = 2 a^2 chi2_d; trimmed mean between its 1% and 99% quantiles."""
    lo, hi = scipy.stats.chi2.ppf([0.01, 0.99], d)
    part = d * (scipy.stats.chi2.cdf(hi, d + 2) - scipy.stats.chi2.cdf(lo, d + 2)) / 0.98
    return 2 * a * a * part


def closed_form_z(a, eps, d=16):
    """Z: unit vectors, chord over epsilon: a^2 (2 sin(theta eps / 2) / eps)^2, theta ~ sin^(d-2)."""
    norm = scipy.integrate.quad(lambda t: math.sin(t) ** (d - 2), 0, math.pi)[0]
    cdf = lambda x: scipy.integrate.quad(lambda t: math.sin(t) ** (d - 2), 0, x)[0] / norm  # noqa: E731
    lo = scipy.optimize.brentq(lambda x: cdf(x) - 0.01, 0, math.pi)
    hi = scipy.optimize.brentq(lambda x: cdf(x) - 0.99, 0, math.pi)
    g = lambda t: a * a * (2 * math.sin(t * eps / 2) / eps) ** 2  # noqa: E731
    num = scipy.integrate.quad(lambda t: g(t) * math.sin(t) ** (d - 2), lo, hi)[0] / norm
    return num / 0.98, lambda t: g(t)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_analytic_linear_generator(sampling):
    a, eps, n = 0.5, 1e-2, 6000
    res = ppl(LinearGenerator(a), space="both", sampling=sampling, num_samples=n, epsilon=eps, crop=False,
              batch_size=500, similarity=squared_l2, device="cpu", progress=False)
    details = res.details
    for space, expected in (("w", closed_form_w(a)), ("z", closed_form_z(a, eps)[0])):
        d = details[details.space == space].distance.to_numpy()
        kept = d[(d >= np.percentile(d, 1, method="lower")) & (d <= np.percentile(d, 99, method="higher"))]
        bound = 4 * kept.std() / math.sqrt(len(kept))  # 4 standard errors
        assert abs(res.results[f"ppl6k_{space}{sampling}_nocrop_eps0.01"] - expected) < bound, (space, expected, bound)


def test_same_value_for_batch_sizes_3_and_16():
    G = tiny_generator(16)
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.strength.fill_(0.3)
    kw = dict(space="both", sampling="both", num_samples=40, similarity=squared_l2, device="cpu", progress=False)
    a, b = ppl(G, batch_size=3, **kw), ppl(G, batch_size=16, **kw)
    assert a.results == b.results and set(a.results) == {f"ppl40_{c}" for c in ("zfull", "zend", "wfull", "wend")}
    assert a.details.shape == (160, 4)


def test_non_finite_distances_are_refused_before_a_chunk_is_kept(tmp_path):
    calls = []

    def nan_in_third_batch(a, b):  # pairs 8..11: the second chunk
        calls.append(a.shape[0])
        d = squared_l2(a, b)
        return d if len(calls) != 3 else d.index_fill(0, torch.tensor([1]), float("nan"))

    with pytest.raises(InputError, match="NaN or Inf distances"):
        ppl(tiny_generator(16), num_samples=12, batch_size=4, chunk_size=8, similarity=nan_in_third_batch,
            device="cpu", progress=False, state_dir=tmp_path / "state")
    assert [p.name for p in (tmp_path / "state").rglob("chunk-*.npz")] == ["chunk-000000.npz"]  # not the NaN's


def test_endpoints_share_noise():
    """With a generator whose only input is noise, both endpoints are identical: distance exactly 0."""
    G = tiny_generator(16)
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.strength.fill_(1.0)
            layer.adain.affine.weight.zero_()  # styles no longer depend on w
        for layer in G.mapping.layers:
            layer.weight.zero_()
    res = ppl(G, space="w", sampling="full", num_samples=8, similarity=squared_l2, device="cpu", progress=False)
    assert res.value == 0.0


def test_lpips_path_equals_lpips_package(vgg16_weights, monkeypatch):
    import lpips
    import torchvision.models._api as tv_api

    from stylegan_metrics.networks.registry import build_similarity
    from stylegan_metrics.networks.weights import load_state_dict

    state = load_state_dict(vgg16_weights)
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", lambda *a, **k: state)  # torchvision's download
    reference = lpips.LPIPS(net="vgg", verbose=False)
    ours = build_similarity("lpips-vgg16", weights=vgg16_weights, device=torch.device("cpu"))
    assert ours.max_rows < 40  # pairs go through the network in chunks
    torch.manual_seed(0)
    x0 = torch.rand(40, 3, 32, 32) * 2 - 1
    x1 = (x0 + 0.1 * torch.randn_like(x0)).clamp(-1, 1)
    with torch.no_grad():
        expected = reference(x0, x1).flatten()
    got = ours(x0, x1)
    assert expected.abs().min() > 0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_lpips_rejects_too_small_crops(vgg16_weights):
    with pytest.raises(InputError, match="16x16"):
        ppl(tiny_generator(16), num_samples=2, weights=vgg16_weights, device="cpu", progress=False)


def test_cli_ppl_both(tmp_path, vgg16_weights, metrics_home):
    G = tiny_generator(64)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    out = tmp_path / "r.jsonl"
    res = CliRunner().invoke(main, ["ppl", "--space", "both", "--sampling", "both", "--ckpt", str(ckpt), "--num", "4",
                                    "--batch", "4", "--weights", str(vgg16_weights), "--device", "cpu",
                                    "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    import json
    line = json.loads(out.read_text())
    assert set(line["results"]) == {f"ppl4_{c}" for c in ("zfull", "zend", "wfull", "wend")}
    assert all(v > 0 and math.isfinite(v) for v in line["results"].values())
    assert line["params"]["epsilon"] == 1e-4 and line["params"]["crop"] is True
