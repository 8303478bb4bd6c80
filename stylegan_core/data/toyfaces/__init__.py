"""toyfaces: procedurally rendered faces carrying the 40 CelebA attributes, deterministic from (seed, index)."""

from stylegan_core.data.toyfaces.dataset import ToyFaces, face_at, render_item, render_toyfaces, write_toyfaces
from stylegan_core.data.toyfaces.face import Face, sample_face
from stylegan_core.data.toyfaces.render import render_face

__all__ = ["Face", "ToyFaces", "face_at", "render_face", "render_item", "render_toyfaces", "sample_face", "write_toyfaces"]
