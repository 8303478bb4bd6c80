"""StyleGAN3 (configs T and R): NVIDIA pickles load as data and draw NVIDIA's own images.

The fixtures in tests/fixtures were written by scripts/make_stylegan3_fixtures.py with NVIDIA's stylegan3
code: tiny generators with seeded random weights, pickled as its training loop does, and NVIDIA's outputs.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import CheckpointError, Generator, load_generator
from stylegan_core.formats.nvidia_pickle import generator_from_record, read_network_pickle
from stylegan_core.networks.filtered_lrelu import design_lowpass_filter, filtered_lrelu
from stylegan_metrics_cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = ["nvidia_stylegan3_t", "nvidia_stylegan3_r"]
TOL = dict(rtol=1e-4, atol=1e-4)

pytestmark = pytest.mark.usefixtures("one_thread")


def expected(name: str) -> dict:
    with np.load(FIXTURES / f"{name}_expected.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.mark.parametrize("name", CONFIGS)
def test_nvidia_stylegan3_pickle_draws_nvidias_images(name):
    G = load_generator(FIXTURES / f"{name}.pkl")
    want = expected(name)
    z = want["z"]
    assert G.config["arch"] == ("stylegan3-r" if name.endswith("_r") else "stylegan3-t")
    assert (G.z_dim, G.w_dim, G.c_dim, G.img_channels) == (16, 16, 0, 3)
    assert (G.num_ws, G.img_resolution) == tuple(want["ws"].shape[1:2]) + (want["img"].shape[-1],)
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(z, None), want["ws"], **TOL)
        torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.7), want["ws_psi07"], **TOL)
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
        torch.testing.assert_close(cut, want["ws_psi05_cutoff2"], **TOL)
        torch.testing.assert_close(G.synthesis(want["ws"], noise_mode="const"), want["img"], **TOL)
        torch.testing.assert_close(G(z, None, truncation_psi=0.7, noise_mode="const"), want["img_psi07"], **TOL)
        # rotated + translated output, set as user code does with NVIDIA's networks
        transform = G.synthesis.input.transform
        assert isinstance(transform, torch.Tensor) and transform.shape == (3, 3)
        assert torch.equal(transform, torch.eye(3))
        G.synthesis.input.transform.copy_(want["transform"])
        moved = G.synthesis(want["ws_psi07"], noise_mode="const")
        torch.testing.assert_close(moved, want["img_transform_psi07"], **TOL)
        assert (moved - want["img_psi07"]).abs().max() > 0.05  # the transform really moved the image


@pytest.mark.parametrize("name", CONFIGS)
def test_our_filter_design_and_layout_match_nvidias(name):
    """A generator built from the loaded config (nothing read from the file) designs NVIDIA's filters."""
    loaded = load_generator(FIXTURES / f"{name}.pkl")
    fresh = Generator(**loaded.config)
    radial = 0
    for ours, theirs in zip(fresh.synthesis.layers, loaded.synthesis.layers):
        assert ours.padding == theirs.padding and (ours.up_factor, ours.down_factor) == (theirs.up_factor, theirs.down_factor)
        for key in ("up_filter", "down_filter"):
            a, b = getattr(ours, key), getattr(theirs, key)
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
                radial += a.ndim == 2
    assert (radial > 0) == name.endswith("_r")  # config R: 2-D jinc filters in the layers that are not critical
    assert set(fresh.state_dict()) == set(loaded.state_dict())


def test_noise_mode_is_accepted_and_changes_nothing():
    G = load_generator(FIXTURES / "nvidia_stylegan3_t.pkl")
    ws = expected("nvidia_stylegan3_t")["ws"]
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        assert torch.equal(G.synthesis(ws, noise_mode="random"), const)
        assert torch.equal(G.synthesis(ws, noise_mode="none", noise_seeds=torch.arange(4)), const)
        assert const.dtype == torch.float32
        with pytest.raises(ValueError, match="noise_mode"):
            G.synthesis(ws, noise_mode="sometimes")
        with pytest.raises(ValueError, match=r"ws must have shape \[N, 16, 16\]"):
            G.synthesis(ws[:, :3])


def _up_pad_filter(v: np.ndarray, f: np.ndarray, up: int, before: int, after: int, axis: int) -> np.ndarray:
    """Along one axis: zero insertion (up - 1 zeros after each sample), zero padding, 'valid' convolution with f."""
    v = np.moveaxis(v, axis, -1)
    z = np.zeros(v.shape[:-1] + (v.shape[-1] * up,))
    z[..., ::up] = v
    z = np.pad(z, [(0, 0)] * (z.ndim - 1) + [(before, after)])
    out = np.apply_along_axis(lambda r: np.convolve(r, f, mode="valid"), -1, z)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("radial", [False, True])
def test_filtered_lrelu_follows_its_definition(radial):
    """bias -> zero insertion, pad (x0, x1, y0, y1), filter fu (gain up^2) -> leaky ReLU * gain -> clamp -> fd -> subsample."""
    from scipy.signal import convolve2d

    rng = np.random.RandomState(0)
    x, b = rng.randn(2, 3, 5, 7), rng.randn(3)
    fu = np.array([0.1, 0.4, 0.3, 0.2])
    fd = rng.rand(4, 4) if radial else np.array([0.2, 0.5, 0.3])
    up, down, (x0, x1, y0, y1), gain, slope, clamp = 2, 2, (3, 1, 2, 4), 1.3, 0.2, 0.9
    got = filtered_lrelu(torch.from_numpy(x).float(), torch.from_numpy(fu).float(), torch.from_numpy(fd).float(),
                         torch.from_numpy(b).float(), up=up, down=down, padding=(x0, x1, y0, y1), gain=gain,
                         slope=slope, clamp=clamp)
    v = x + b[None, :, None, None]
    v = _up_pad_filter(v, fu * up, up, x0, x1, axis=3)  # separable: gain up per axis
    v = _up_pad_filter(v, fu * up, up, y0, y1, axis=2)
    v = np.clip(np.where(v > 0, v, slope * v) * gain, -clamp, clamp)
    if radial:
        v = np.stack([[convolve2d(c, fd, mode="valid") for c in n] for n in v])
    else:
        v = _up_pad_filter(_up_pad_filter(v, fd, 1, 0, 0, axis=3), fd, 1, 0, 0, axis=2)
    want = v[:, :, ::down, ::down]
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_design_lowpass_filter_is_a_normalized_symmetric_lowpass():
    assert design_lowpass_filter(1, 4, 6, 32) is None
    for f in (design_lowpass_filter(12, cutoff=4, width=6, fs=32), design_lowpass_filter(12, 4, 6, 32, radial=True)):
        assert abs(float(f.sum()) - 1) < 1e-6
        torch.testing.assert_close(f, f.flip(list(range(f.ndim))))
        # gain 1 at DC, ~0 beyond the stopband (7 of 32: bin 56 of 256)
        spectrum = np.abs(np.fft.fftn(f.double().numpy(), s=[256] * f.ndim, axes=list(range(f.ndim))))
        assert abs(spectrum.flat[0] - 1) < 1e-6 and spectrum[(slice(60, 197),) * f.ndim].max() < 0.02
    radial = design_lowpass_filter(12, 4, 6, 32, radial=True)
    torch.testing.assert_close(radial, radial.T)


def test_layout_that_differs_from_nvidias_formula_is_refused(tmp_path):
    path = FIXTURES / "nvidia_stylegan3_t.pkl"
    record = read_network_pickle(path)["G_ema"]
    layer = record.state["_modules"]["synthesis"].state["_modules"]["L3_36_8"]
    layer.state["padding"] = [1, 2, 3, 4]
    with pytest.raises(CheckpointError, match=r"layer L3_36_8 has padding=\[1, 2, 3, 4\] where NVIDIA's layout"):
        generator_from_record(record, path)
    del layer.state["padding"]
    with pytest.raises(CheckpointError, match="layer L3_36_8 does not say its padding"):
        generator_from_record(record, path)


def test_loading_imports_no_nvidia_module():
    code = (
        "import sys\n"
        "from stylegan_core import load_generator\n"
        f"for name in {CONFIGS + ['nvidia_ada_conditional']!r}:\n"
        f"    load_generator({str(FIXTURES)!r} + '/' + name + '.pkl')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dnnlib', 'torch_utils', 'training', 'legacy'))\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("name", ["nvidia_stylegan3_r"])
def test_convert_writes_our_checkpoint_with_the_same_images(tmp_path, name):
    out = tmp_path / "converted.pt"
    res = CliRunner().invoke(main, ["convert", str(FIXTURES / f"{name}.pkl"), str(out)])
    assert res.exit_code == 0, res.output
    assert "stylegan3-r" in res.output
    converted, want = load_generator(out), expected(name)
    assert converted.config == load_generator(FIXTURES / f"{name}.pkl").config
    assert converted.config["synthesis_kwargs"] == {"num_layers": 8, "margin_size": 6}  # non-default arguments kept
    with torch.no_grad():
        images = converted(want["z"], None, truncation_psi=0.7, noise_mode="const")
        torch.testing.assert_close(images, want["img_psi07"], **TOL)
        converted.synthesis.input.transform.copy_(want["transform"])
        torch.testing.assert_close(converted.synthesis(want["ws_psi07"]), want["img_transform_psi07"], **TOL)
