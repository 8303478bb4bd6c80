"""Per-sample noise by declaration: every network here and every loaded format declares it, wrapped and compiled
generators keep it (the same images, bit for bit), and generators that do not declare it get one warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from stylegan_core import InputError, load_generator
from stylegan_core.formats.checkpoint import save_checkpoint
from stylegan_metrics.engine import sampling
from stylegan_metrics.engine.metric import MetricWarning
from stylegan_metrics.engine.sampling import (GlobalNoiseWarning, declares_per_sample_noise, generate_batches,
                                              supports_noise_seeds)
from helpers import tiny_generator, tiny_stylegan2

FIXTURES = Path(__file__).parent / "fixtures"


def images(G, num: int = 20, batch_size: int = 7) -> torch.Tensor:
    """uint8 images [num, C, H, W] of samples 0..num-1, seed 3."""
    return torch.cat([b.images for b in generate_batches(G, num, batch_size=batch_size, seed=3, device="cpu")])


class Forwarding(nn.Module):
    """A hook-less wrapper that passes everything on, keeping the wrapped network under `attribute`."""

    def __init__(self, inner: nn.Module, attribute: str = "module"):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, inner)

    def forward(self, *args, **kwargs):
        return getattr(self, self.attribute)(*args, **kwargs)


class Declaring(Forwarding):
    """A wrapper that keeps its network under a name of its own and declares per-sample noise itself."""

    per_sample_noise = True


def noisy_stylegan(resolution: int = 16):
    """A tiny arch='stylegan' generator whose noise shows (strengths 0.5 rather than 0)."""
    G = tiny_generator(resolution)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.5)
    return G


def with_synthesis(G, make):
    G.synthesis = make(G.synthesis)
    return G


def as_args_subclass(synthesis):
    """The same network as an instance of a user's subclass whose forward takes *args, **kwargs."""
    class ArgsForward(type(synthesis)):
        def forward(self, *args, **kwargs):
            return super().forward(*args, **kwargs)
    synthesis.__class__ = ArgsForward
    return synthesis


def with_wrapped_forward(synthesis):
    """The instance's forward replaced by a *args, **kwargs closure (what the signature check used to miss)."""
    forward = synthesis.forward
    synthesis.forward = lambda *args, **kwargs: forward(*args, **kwargs)
    return synthesis


def as_optimized_module(synthesis):
    """Wrapped as torch.compile wraps a module (`_orig_mod`, attribute look-ups passed on), without compiling."""
    class OptimizedStandIn(nn.Module):
        def __init__(self, mod):
            super().__init__()
            self._orig_mod = mod

        def forward(self, *args, **kwargs):
            return self._orig_mod(*args, **kwargs)

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self._orig_mod, name)
    return OptimizedStandIn(synthesis)


TINY3 = dict(z_dim=8, w_dim=8, img_resolution=16, img_channels=3, mapping_layers=1, channel_base=64,
             channel_max=8, synthesis_kwargs=dict(num_layers=2, num_critical=1, margin_size=2))


@pytest.mark.parametrize("make", [
    lambda: tiny_generator(16),
    lambda: tiny_generator(16, progressive=True),
    lambda: tiny_stylegan2(16),
    lambda: tiny_stylegan2(16, c_dim=3),
    lambda: tiny_generator(16, **{**TINY3, "arch": "stylegan3-t"}),
    lambda: tiny_generator(16, **{**TINY3, "arch": "stylegan3-r"}),
], ids=["stylegan", "stylegan-progressive", "stylegan2", "stylegan2-conditional", "stylegan3-t", "stylegan3-r"])
def test_every_architecture_declares_per_sample_noise(make):
    G = make()
    assert type(G.synthesis).per_sample_noise is True  # declared by the class, not found by reading a signature
    assert supports_noise_seeds(G)


@pytest.mark.parametrize("path", [
    "nvidia_ada_conditional.pkl", "nvidia_stylegan3_t.pkl", "nvidia_stylegan3_r.pkl",
    "tensorflow/tf-stylegan1-32.pkl", "tensorflow/tf-stylegan2-32.pkl", "tensorflow/tf-stylegan1-g128.pkl",
])
def test_every_loaded_format_declares_per_sample_noise(path):
    assert supports_noise_seeds(load_generator(FIXTURES / path))


def test_our_checkpoints_declare_per_sample_noise(tmp_path):
    G = tiny_stylegan2(16)
    assert supports_noise_seeds(load_generator(save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)))


@pytest.mark.parametrize("make", [noisy_stylegan, tiny_stylegan2], ids=["stylegan", "stylegan2"])
@pytest.mark.parametrize("wrap", [
    Forwarding,
    lambda s: Forwarding(Forwarding(s, "__wrapped__")),
    lambda s: Declaring(s, "net"),
    as_args_subclass,
    with_wrapped_forward,
    as_optimized_module,
], ids=["module", "module-of-wrapped", "declaring-wrapper", "args-subclass", "wrapped-forward", "orig-mod"])
def test_wrapped_generators_draw_the_same_images_bit_for_bit(make, wrap):
    expected = images(make(16), batch_size=16)
    G = with_synthesis(make(16), wrap)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GlobalNoiseWarning)
        assert torch.equal(images(G, batch_size=7), expected)  # and any batch size gives them
        assert torch.equal(images(G, batch_size=3), expected)


@pytest.mark.slow
def test_torch_compile_keeps_the_images_bit_for_bit():
    expected = images(tiny_stylegan2(16), num=16, batch_size=8)
    # The eager backend: dynamo traces and wraps (an OptimizedModule holding _orig_mod) but makes no kernels; on this
    # CPU inductor cannot compile the counter-based noise (its int64 constants overflow sympy's printer).
    G = with_synthesis(tiny_stylegan2(16), lambda s: torch.compile(s, backend="eager"))
    assert type(G.synthesis).__name__ == "OptimizedModule"
    with warnings.catch_warnings():
        warnings.simplefilter("error", GlobalNoiseWarning)
        assert torch.equal(images(G, num=16, batch_size=16), expected)


class ForeignSynthesis(nn.Module):
    """A synthesis network of foreign code: noise from the global RNG; its forward names noise_seeds but ignores it
    (a signature proves nothing), and it declares nothing."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.calls: list[dict] = []

    def forward(self, ws, noise_mode="random", noise_seeds=None):
        self.calls.append({"noise_seeds": noise_seeds})
        return self.inner(ws, noise_mode=noise_mode)


def foreign(seed: int = 0):
    G = tiny_stylegan2(16, seed=seed)
    G.synthesis = type("Foreign" + str(seed), (ForeignSynthesis,), {})(G.synthesis)  # a class of its own: warned once
    return G


def test_foreign_generator_gets_global_noise_and_one_warning_line():
    G = foreign(1)
    assert not supports_noise_seeds(G)
    with pytest.warns(GlobalNoiseWarning) as record:
        first = images(G, batch_size=7)
        again = images(G, batch_size=7)
    assert len(record) == 1  # once, not once per batch or per run
    message = str(record[0].message)
    assert "\n" not in message and "global RNG" in message and "batch size" in message and "Foreign1" in message
    assert issubclass(GlobalNoiseWarning, MetricWarning)  # the CLI prints it as one 'warning: ...' line
    assert all(call["noise_seeds"] is None for call in G.synthesis.calls)  # never handed seeds it did not declare
    assert torch.equal(first, again)  # deterministic for one batch size ...
    assert not torch.equal(first, images(G, batch_size=5))  # ... but not across batch sizes, as the warning says
    assert not torch.equal(first, images(tiny_stylegan2(16, seed=1), batch_size=7))  # not the per-sample noise


def test_a_wrapper_may_opt_out_and_a_declaration_must_be_a_bool():
    G = tiny_stylegan2(16)
    G.synthesis = type("OptOut", (Forwarding,), {"per_sample_noise": False})(G.synthesis)
    assert not supports_noise_seeds(G)  # the wrapper's word comes first, though the wrapped network declares
    G.synthesis.per_sample_noise = "yes"
    with pytest.raises(InputError, match="per_sample_noise is 'yes', not True or False"):
        supports_noise_seeds(G)


def test_wrapper_cycles_and_missing_links_declare_nothing():
    loop = Forwarding(nn.Identity())
    loop.__dict__["module"] = loop  # a wrapper that wraps itself: no endless walk
    assert not declares_per_sample_noise(loop)
    assert not declares_per_sample_noise(Forwarding(nn.Identity(), "net"))  # an undocumented link is not followed
    assert not declares_per_sample_noise(object())


def test_warning_is_given_on_the_main_rank_only(monkeypatch):
    monkeypatch.setattr(sampling.ranks, "is_main", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GlobalNoiseWarning)
        images(foreign(3), num=4, batch_size=4)


class MethodGenerator:
    """A generator of foreign code whose synthesis is a method (no module, no noise)."""

    z_dim = w_dim = 16
    num_ws, img_resolution, img_channels = 2, 4, 1

    def mapping(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        return z[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="random"):
        return ws[:, 0].reshape(-1, 1, 4, 4).tanh()


def test_a_synthesis_method_is_named_in_the_warning_and_may_declare():
    with pytest.warns(GlobalNoiseWarning, match=r"\(test_sampling_contract\.MethodGenerator\.synthesis\)"):
        first = images(MethodGenerator(), num=6, batch_size=3)
    declared = type("Declared", (MethodGenerator,), {})
    declared.synthesis = lambda self, ws, noise_mode="random", noise_seeds=None: MethodGenerator.synthesis(self, ws)
    declared.synthesis.per_sample_noise = True  # a function's attribute: the bound method reads it
    with warnings.catch_warnings():
        warnings.simplefilter("error", GlobalNoiseWarning)
        assert supports_noise_seeds(declared()) and torch.equal(images(declared(), num=6, batch_size=3), first)
