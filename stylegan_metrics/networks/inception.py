"""The `inception-v3` feature network: torch-fidelity's TF-compatible Inception-v3 (pool_3, 2048-d), its
TF-exact resize inside, with BatchNorm folded into the convolutions and channels-last activations; on request
the same pass also gives the 1008 class logits without the output bias (the Inception Score's input)."""

from __future__ import annotations

import os

import torch
from torch import nn

from stylegan_metrics.networks.weights import resolve_weights, sha256_of


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """One convolution computing bn(conv(x)) with bn's running statistics (inference only)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # [out]
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                       padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        folded.bias.copy_((conv_bias - bn.running_mean) * scale + bn.bias)
    return folded.to(conv.weight.device)


POOL_FEATURES = 2048   # pool_3 width
NUM_LOGITS = 1008      # the 2015 graph's classes: ImageNet's 1000 and 8 unused


def build_inception_v3(
    weights: str | os.PathLike | None,  # None: the standard file (cache or download); else this file
    device: torch.device,
    *,
    logits: bool = False,               # False: forward(uint8 [N, 3, H, W]) -> (pool [N, 2048],)
                                        # True: -> (pool [N, 2048], unbiased logits [N, 1008]) from one pass,
                                        # logits = pool @ fc.weight^T (torch-fidelity's 'logits_unbiased')
) -> tuple[nn.Module, str]:
    """Features equal torch-fidelity's to float32 rounding (~1e-6); about 2x faster on the CPU."""
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

    path = resolve_weights("inception-v3", weights)  # explicit files are checked to hold only tensors,
    # cached and downloaded ones match the upstream SHA-256, so torch-fidelity's own unpickling is safe
    outputs = ["2048", "logits_unbiased"] if logits else ["2048"]
    net = FeatureExtractorInceptionV3("inception-v3-compat", outputs, feature_extractor_weights_path=str(path)).eval()
    for block in net.modules():
        if isinstance(block, BasicConv2d):  # forward: relu(bn(conv(x)))
            block.conv, block.bn = fold_batchnorm(block.conv, block.bn), nn.Identity()
    return net.to(device, memory_format=torch.channels_last), f"inception-v3:{sha256_of(path)[:16]}"
