"""toyfaces: procedurally rendered faces carrying the 40 CelebA attributes, deterministic from (seed, index)."""

from .dataset import ToyFaces, render_toyfaces, sample_faces, write_toyfaces
from .face import Face, sample_face
from .render import render_face

__all__ = ["Face", "ToyFaces", "render_face", "render_toyfaces", "sample_face", "sample_faces", "write_toyfaces"]
