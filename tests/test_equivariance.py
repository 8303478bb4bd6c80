"""Equivariance math (EQ-T, EQ-T_frac, EQ-R): hand cases, and NVIDIA's own numbers on its tiny StyleGAN3 fixtures."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_core import InputError, load_generator
from stylegan_metrics.formulas.equivariance import (
    KINDS, apply_affine_transformation, apply_fractional_pseudo_rotation, apply_fractional_rotation,
    apply_fractional_translation, apply_integer_translation, construct_affine_bandlimit_filter, psnr_from_sums,
    rotation_matrix, translation_matrix,
)
from stylegan_metrics.metrics.equivariance import equivariance_batch, random_transform_params
from helpers import tiny_stylegan2

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = ["nvidia_stylegan3_t", "nvidia_stylegan3_r"]

pytestmark = pytest.mark.usefixtures("one_thread")


def expected(name: str) -> dict:
    with np.load(FIXTURES / f"{name}_expected.npz") as data:
        return {k: data[k] for k in data.files}


def test_psnr_from_sums_by_hand():
    assert psnr_from_sums(0.01 * 50, 50) == pytest.approx(20 * math.log10(2) + 20)  # mse 0.01 -> 26.02 dB
    assert psnr_from_sums(4.0, 1.0) == pytest.approx(0.0)  # mse = peak^2
    with pytest.raises(ValueError, match="no valid pixels"):
        psnr_from_sums(1.0, 0.0)


def test_integer_translation_by_hand():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5)
    z, m = apply_integer_translation(x, 2 / 5, -1 / 4)  # 2 px right, 1 px up
    assert torch.equal(z[:, :, :3, 2:], x[:, :, 1:, :3]) and torch.equal(m[:, :, :3, 2:], torch.ones(2, 1, 3, 3))
    assert z.sum() == z[:, :, :3, 2:].sum() and m.sum() == 2 * 9
    assert apply_integer_translation(x, 1.0, 0)[1].sum() == 0  # shifted out entirely


def test_fractional_translation_by_a_whole_pixel_is_the_integer_shift():
    x = torch.randn(1, 2, 12, 12, generator=torch.Generator().manual_seed(0))
    z, m = apply_fractional_translation(x, 2 / 12, -3 / 12)
    zi, mi = apply_integer_translation(x, 2 / 12, -3 / 12)
    assert m.sum() > 0 and torch.all(mi[m > 0] == 1)  # the fractional mask keeps a margin inside the integer one
    torch.testing.assert_close(z * m, zi * m, rtol=0, atol=1e-6)


def test_affine_filter_phases_and_rotation_of_a_smooth_image():
    f = construct_affine_bandlimit_filter(torch.eye(3), up=4)
    assert f.shape == (127, 127)
    phases = torch.nn.functional.pad(f, [0, 1, 0, 1]).reshape(32, 4, 32, 4).sum(dim=(0, 2))
    torch.testing.assert_close(phases, torch.full((4, 4), 1 / 16))  # every upsampling phase sums to 1 / up^2
    # a smooth blob rotated by 90 degrees equals torch.rot90 where the result is valid
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x = torch.exp(-((xx - 19.5) ** 2 + (yy - 14.5) ** 2) / 30)[None, None]
    z, m = apply_fractional_rotation(x, math.pi / 2)
    assert m.sum() > 100
    assert ((z - torch.rot90(x, 1, dims=(2, 3))) * m).abs().max() < 1e-4  # counter-clockwise in array terms
    assert ((z - torch.rot90(x, -1, dims=(2, 3))) * m).abs().max() > 0.5
    y, mp = apply_fractional_pseudo_rotation(x, 0.3)  # low-pass only: a smooth image passes almost unchanged
    assert mp.sum() > 100 and ((y - x) * mp).abs().max() < 1e-3
    assert torch.allclose(rotation_matrix(0.0), torch.eye(3))
    torch.testing.assert_close(translation_matrix(0.1, -0.2)[:2, 2], torch.tensor([-0.1, 0.2]))
    assert apply_affine_transformation(x, torch.eye(3), a=3, amax=6)[0].shape == x.shape


@pytest.mark.parametrize("name", CONFIGS)
def test_transform_functions_reproduce_nvidias_sums_on_nvidias_images(name):
    want = expected(name)
    orig = torch.from_numpy(want["parts_orig"])
    for kind in KINDS:
        params, img = torch.from_numpy(want[f"parts_{kind}_params"]), torch.from_numpy(want[f"parts_{kind}_img"])
        if kind == "eqr":
            ref, ref_mask = apply_fractional_rotation(orig, params)
            img, img_mask = apply_fractional_pseudo_rotation(img, params)
            mask = ref_mask * img_mask
        else:
            shift = apply_integer_translation if kind == "eqt_int" else apply_fractional_translation
            ref, mask = shift(orig, params[0], params[1])
        sums = np.array([float(((ref - img).square() * mask).double().sum()), float(mask.double().sum())])
        # the squared error is a residual of float32 rounding (~1e-6 for EQ-R), whose last digits follow the CPU's
        # vector kernels; 1e-4 of it is 4e-4 dB of PSNR
        np.testing.assert_allclose(sums, want[f"parts_{kind}_sums"], rtol=1e-4, err_msg=kind)


@pytest.mark.parametrize("name", CONFIGS)
def test_equivariance_batch_gives_nvidias_psnr(name):
    """NVIDIA's compute_equivariance_metrics from torch.manual_seed(s): per batch z ~ randn, then one transform."""
    G, want = load_generator(FIXTURES / f"{name}.pkl"), expected(name)
    batch = int(want["eq_batch"])
    for kind in KINDS:
        torch.manual_seed(int(want["eq_seed"]))
        sq_err = mask = 0.0
        for _ in range(0, int(want["eq_samples"]), batch):
            ws = G.mapping(torch.randn([batch, G.z_dim]), None)
            params = random_transform_params(kind, img_resolution=G.img_resolution,
                                             translate_max=float(want["eq_translate_max"]),
                                             rotate_max=float(want["eq_rotate_max"]))
            e, m = equivariance_batch(G, ws, kind, params)
            assert e.shape == m.shape == (batch,) and e.dtype == torch.float64
            sq_err, mask = sq_err + float(e.sum()), mask + float(m.sum())
        assert psnr_from_sums(sq_err, mask) == pytest.approx(float(want[f"psnr_{kind}"]), abs=1e-3), kind
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))  # restored


def test_equivariance_batch_needs_an_input_transform_and_keeps_the_users():
    # the metric's own check (input_transform): one message for evaluate and for this function
    with pytest.raises(InputError, match=r"equivariance needs a generator whose input can be transformed "
                                         r"\(G\.synthesis\.input\.transform, \[3, 3\]"):
        equivariance_batch(tiny_stylegan2(8), torch.zeros(1, 4, 16), "eqt_int", torch.zeros(2))
    G = load_generator(FIXTURES / "nvidia_stylegan3_r.pkl")
    user = rotation_matrix(0.4)
    G.synthesis.input.transform.copy_(user)
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    with pytest.raises(ValueError, match="kind must be one of"):
        equivariance_batch(G, ws, "eqt", torch.zeros(2))
    e, m = equivariance_batch(G, ws, "eqt_frac", torch.tensor([0.05, -0.03]))
    assert torch.equal(G.synthesis.input.transform, user) and (e > 0).all() and (m > 0).all()
    t = random_transform_params("eqt_int", img_resolution=16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(t * 16, (t * 16).round()) and t.abs().max() <= 0.125
    angle = random_transform_params("eqr", img_resolution=16, rotate_max=0.5, generator=torch.Generator().manual_seed(1))
    assert angle.shape == () and abs(float(angle)) <= math.pi / 2
