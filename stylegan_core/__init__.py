"""A compact StyleGAN: networks, losses, trainer, datasets and checkpoints (NVIDIA's generator protocol)."""

from .checkpoint import load_checkpoint, load_generator, save_checkpoint
from .datasets import ImageDataset
from .discriminator import Discriminator
from .errors import CheckpointError, DatasetError, InputError
from .generator import Generator, mix_styles
from .residual_discriminator import ResidualDiscriminator
from .trainer import Trainer, TrainingOptions, train

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "DatasetError", "Discriminator", "Generator", "ImageDataset", "InputError", "ResidualDiscriminator",
    "Trainer", "TrainingOptions", "load_checkpoint", "load_generator", "mix_styles", "save_checkpoint", "train",
]
