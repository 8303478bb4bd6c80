"""The paper's building blocks against hand computations."""

import math

import torch
import torch.nn.functional as F

from stylegan_core.networks.discriminator import MinibatchStdDev
from stylegan_core.networks.layers import AdaIN, Blur, EqualizedConv2d, EqualizedLinear, NoiseInjection, PixelNorm, instance_norm
from stylegan_core.networks.mapping import MappingNetwork


def test_adain_output_statistics_equal_the_style():
    torch.manual_seed(0)
    adain = AdaIN(w_dim=8, channels=5)
    x = torch.randn(3, 5, 16, 16) * 4 + 7
    w = torch.randn(3, 8)
    out = adain(x, w)
    scale, bias = adain.affine(w).chunk(2, dim=1)  # [N, C] each
    mean = out.mean(dim=(2, 3))
    std = out.var(dim=(2, 3), unbiased=False).sqrt()
    torch.testing.assert_close(mean, bias, atol=1e-5, rtol=0)
    torch.testing.assert_close(std, (1 + scale).abs(), atol=1e-4, rtol=1e-4)


def test_instance_norm_matches_torch():
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    torch.testing.assert_close(instance_norm(x), F.instance_norm(x, eps=1e-8), atol=1e-5, rtol=1e-5)


def test_pixel_norm_unit_second_moment():
    z = torch.randn(10, 32) * 5
    assert torch.allclose(PixelNorm()(z).square().mean(dim=1), torch.ones(10), atol=1e-5)


def test_equalized_lr_runtime_scale():
    torch.manual_seed(0)
    lin = EqualizedLinear(64, 8, gain=math.sqrt(2), lr_mul=0.01)
    # stored weights are N(0, 1/lr_mul^2); effective weights gain/sqrt(fan_in) * lr_mul * stored
    assert abs(lin.weight.std().item() - 100) < 5
    x = torch.randn(4, 64)
    expected = x @ (lin.weight * math.sqrt(2) / 8 * 0.01).T + lin.bias * 0.01
    torch.testing.assert_close(lin(x), expected)
    conv = EqualizedConv2d(3, 4, 3, gain=1.0)
    img = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(conv(img), F.conv2d(img, conv.weight / math.sqrt(27), conv.bias, padding=1))


def test_blur_kernel_is_121_outer_product():
    x = torch.zeros(1, 2, 5, 5)
    x[0, :, 2, 2] = 16.0
    out = Blur()(x)[0, 0]
    expected = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]])
    torch.testing.assert_close(out[1:4, 1:4], expected)
    assert out.sum().item() == 16.0


def test_noise_modes():
    layer = NoiseInjection(channels=3, resolution=4)
    with torch.no_grad():
        layer.strength.copy_(torch.tensor([0.0, 1.0, 2.0]))
    x = torch.zeros(2, 3, 4, 4)
    assert torch.equal(layer(x, "none"), x)
    const = layer(x, "const")
    torch.testing.assert_close(const[:, 2], 2 * layer.noise_const[0, 0].expand(2, 4, 4))
    assert torch.equal(const[:, 0], torch.zeros(2, 4, 4))  # init strength 0 means no noise
    r1, r2 = layer(x, "random"), layer(x, "random")
    assert not torch.equal(r1, r2)
    torch.testing.assert_close(r1[:, 2], 2 * r1[:, 1])  # one map per sample shared by all channels


def test_minibatch_stddev_hand_computed():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 2, 2)
    # groups are {i, i+2, i+4, i+6}; statistic = mean over C,H,W of the biased group std
    for i in range(8):
        group = x[[i % 2, i % 2 + 2, i % 2 + 4, i % 2 + 6]]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 3], expected.expand(2, 2))


def test_mapping_w_avg_tracking_and_truncation():
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=8, w_dim=8, num_ws=6, num_layers=2)
    z = torch.randn(16, 8)
    ws = mapping(z, update_w_avg=True)
    # first update from zero: w_avg = lerp(batch_mean, 0, 0.995) = 0.005 * batch_mean
    torch.testing.assert_close(mapping.w_avg, 0.005 * ws[:, 0].mean(dim=0))
    with torch.no_grad():
        mapping.w_avg.copy_(torch.randn(8))
    torch.testing.assert_close(mapping(z, truncation_psi=0.0), mapping.w_avg.expand(16, 6, 8))
    torch.testing.assert_close(mapping(z, truncation_psi=1.0), ws)
    half = mapping(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], mapping.w_avg + 0.5 * (ws[:, :2] - mapping.w_avg))
    assert torch.equal(half[:, 2:], ws[:, 2:])
