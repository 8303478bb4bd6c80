"""The `inception-v3` feature network: BatchNorm folding, and features equal to torch-fidelity's per image."""

import torch
from torch import nn

from stylegan_metrics.networks.registry import CPU_MAX_ROWS, build_feature_extractor
from stylegan_metrics.networks.inception import NUM_LOGITS, POOL_FEATURES, build_inception_v3, fold_batchnorm


def test_fold_batchnorm_equals_conv_then_batchnorm():
    torch.manual_seed(0)
    for bias, groups, stride in [(False, 1, 1), (True, 2, 2)]:
        conv = nn.Conv2d(4, 6, 3, stride=stride, padding=1, groups=groups, bias=bias)
        bn = nn.BatchNorm2d(6, eps=1e-3).eval()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.data.normal_()
        bn.bias.data.normal_()
        x = torch.randn(3, 4, 9, 9)
        with torch.no_grad():
            torch.testing.assert_close(fold_batchnorm(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


def test_features_equal_torch_fidelity_per_image(inception_weights):
    """40 images: three chunks of at most CPU_MAX_ROWS per network call, each image as torch-fidelity computes it."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=str(inception_weights)).eval()
    ours = build_feature_extractor("inception-v3", weights=inception_weights, device=torch.device("cpu"))
    assert ours.max_rows == CPU_MAX_ROWS < 40
    images = torch.randint(0, 256, (40, 3, 24, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = torch.cat([reference(images[i:i + 8])[0] for i in range(0, 40, 8)])
    got = ours(images)
    assert expected.std() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_pool_features_and_unbiased_logits_from_one_pass(inception_weights):
    """logits=True: torch-fidelity's ['2048', 'logits_unbiased'] (no output bias; the file's bias is non-zero)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased", "logits"],
                                            feature_extractor_weights_path=str(inception_weights)).eval()
    ours, fingerprint = build_inception_v3(inception_weights, torch.device("cpu"), logits=True)
    assert fingerprint.startswith("inception-v3:")  # the pool features are those of the default network
    images = torch.randint(0, 256, (3, 3, 40, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pool, unbiased, biased = reference(images)
        got_pool, got_logits = ours(images)
    assert got_pool.shape == (3, POOL_FEATURES) and got_logits.shape == (3, NUM_LOGITS)
    assert (biased - unbiased).abs().max() > 0.1 and unbiased.std() > 0.1
    torch.testing.assert_close(got_pool, pool, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_logits, unbiased, rtol=1e-4, atol=1e-5)
