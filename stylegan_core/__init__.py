"""A compact StyleGAN: networks, losses, trainer, datasets and checkpoints (NVIDIA's generator protocol)."""

from stylegan_core.formats.checkpoint import load_checkpoint, load_discriminator, load_generator, save_checkpoint
from stylegan_core.data.datasets import ImageDataset
from stylegan_core.networks.discriminator import Discriminator
from stylegan_core.errors import CheckpointError, DatasetError, InputError
from stylegan_core.networks.generator import Generator, mix_styles
from stylegan_core.networks.residual_discriminator import ResidualDiscriminator
from stylegan_core.training.trainer import Trainer, TrainingOptions, train

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "DatasetError", "Discriminator", "Generator", "ImageDataset", "InputError", "ResidualDiscriminator",
    "Trainer", "TrainingOptions", "load_checkpoint", "load_discriminator", "load_generator", "mix_styles", "save_checkpoint",
    "train",
]
