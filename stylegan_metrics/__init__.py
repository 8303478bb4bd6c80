"""Metrics of the StyleGAN papers (FID, PPL, linear separability) for any generator of NVIDIA's protocol."""

__version__ = "0.1.0"
