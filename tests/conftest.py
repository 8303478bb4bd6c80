"""Shared fixtures; the plain helper functions live in helpers.py."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from helpers import write_flat_images
from stylegan_metrics.testing import write_inception_v3_weights, write_vgg16_weights


@pytest.fixture
def one_thread():
    """Tiny networks run far faster on one thread of a shared CPU (opt in: pytest.mark.usefixtures("one_thread"))."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    return write_flat_images(tmp_path / "flat")


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    return write_inception_v3_weights(tmp_path_factory.mktemp("weights") / "inception-test.pth")


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory) -> Path:
    return write_vgg16_weights(tmp_path_factory.mktemp("weights") / "vgg16-test.pth")


@pytest.fixture
def metrics_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(home))
    monkeypatch.setenv("STYLEGAN_METRICS_OFFLINE", "1")
    return home


@pytest.fixture
def nvidia_modules(monkeypatch):
    """Importable stand-ins for torch_utils.persistence and dnnlib.util, so pickle writes NVIDIA's global names."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("the loader must never call NVIDIA's reconstruct function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util", "__qualname__": "EasyDict"})
    for name, module in (("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence),
                         ("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=util.EasyDict)
