"""Checkpoint files: this project's own, NVIDIA pickles and rosinality checkpoints, read without running their code."""
