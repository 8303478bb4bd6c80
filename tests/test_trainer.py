"""The training loop: it learns, its regularizers follow the paper, and resume continues the same run."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core import (ImageDataset, InputError, Trainer, TrainingOptions, load_checkpoint, load_generator,
                           save_checkpoint, train)
from stylegan_core.training.trainer import IndexStream, ema_beta, sample_ws
from helpers import tiny_generator

TINY = dict(resolution=8, batch=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)


def mean_color(G, n=256):
    with torch.no_grad():
        return G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(1))).mean(dim=(0, 2, 3))


def test_short_run_moves_mean_color_toward_data(flat_folder, tmp_path):
    ds = ImageDataset(flat_folder, resolution=8)
    data_mean = torch.stack([ds[i][0] for i in range(len(ds))]).float().div(127.5).sub(1).mean(dim=(0, 2, 3))
    trainer = Trainer(TrainingOptions(kimg=1.5, ema_kimg=0.1, snap_kimg=100, **TINY), ds, tmp_path / "run")
    before = (mean_color(trainer.G_ema) - data_mean).norm().item()
    last = trainer.train(progress=False)
    after = (mean_color(trainer.G_ema) - data_mean).norm().item()
    assert after < 0.6 * before, (before, after)
    assert last.name == "network-snapshot-000001.pt"
    grid = Image.open(tmp_path / "run" / "fakes000001.png")
    assert grid.size == (4 * 8, 4 * 8)
    assert trainer.step == 94 and trainer.images_seen == 94 * 16
    assert trainer.G.mapping.w_avg.abs().sum() > 0  # w_avg was tracked


def test_resume_continues_the_same_run(flat_folder, tmp_path):
    opts = TrainingOptions(kimg=0.096, snap_kimg=100, **TINY)  # 6 steps
    straight = train(flat_folder, tmp_path / "a", opts, progress=False)
    half = dataclasses.replace(opts, kimg=0.048)  # 3 steps, then resume to 6
    train(flat_folder, tmp_path / "b", half, progress=False)
    resumed = train(flat_folder, tmp_path / "b", opts, resume=True, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["step"] == b["step"] == 6
    for part in ("G", "G_ema", "D"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)


def test_resume_refuses_changed_options_and_unasked_overwrite(flat_folder, tmp_path):
    opts = TrainingOptions(kimg=0.032, snap_kimg=100, **TINY)
    train(flat_folder, tmp_path / "run", opts, progress=False)
    with pytest.raises(InputError, match="already holds snapshots"):
        train(flat_folder, tmp_path / "run", opts, progress=False)
    with pytest.raises(InputError, match="lr: run has 0.002, asked 0.01"):
        train(flat_folder, tmp_path / "run", dataclasses.replace(opts, lr=0.01), resume=True, progress=False)


def test_resume_with_another_process_count_warns(flat_folder, tmp_path):
    opts = TrainingOptions(kimg=0.032, snap_kimg=100, **TINY)
    snapshot = train(flat_folder, tmp_path / "run", opts, progress=False)
    data = load_checkpoint(snapshot)
    assert data["world_size"] == 1
    save_checkpoint(snapshot, **{k: v for k, v in data.items() if k not in ("format", "version")} | {"world_size": 2})
    with pytest.warns(UserWarning, match="run of 2 process.*resumed with 1"):
        train(flat_folder, tmp_path / "run", dataclasses.replace(opts, kimg=0.048), resume=True, progress=False)


def test_ema_beta_formula():
    opts = TrainingOptions(resolution=8)
    assert ema_beta(opts, 32, 0) == 0.5 ** (32 / 10_000)
    ramp = dataclasses.replace(opts, ema_rampup=0.05)
    assert ema_beta(ramp, 32, 64_000) == 0.5 ** (32 / 3200)       # min(10k, 0.05 * 64k)
    assert ema_beta(ramp, 32, 10_000_000) == 0.5 ** (32 / 10_000)


def test_style_mixing_regularization_draws_a_crossover():
    G = tiny_generator(16)  # num_ws = 6
    crossovers = []
    for seed in range(200):
        torch.manual_seed(seed)
        ws = sample_ws(G, 4, mixing_prob=0.9, device=torch.device("cpu"))
        changes = [i for i in range(1, G.num_ws) if not torch.equal(ws[:, i], ws[:, i - 1])]
        assert len(changes) <= 1
        crossovers.append(changes[0] if changes else None)
    mixed = [c for c in crossovers if c is not None]
    assert 0.83 < len(mixed) / 200 < 0.97  # probability 0.9
    assert set(mixed) == {1, 2, 3, 4, 5}   # uniform in [1, num_ws)


def test_index_stream_is_a_resumable_permutation_stream():
    full = IndexStream(10, 4, seed=3)
    it = iter(full)
    batches = [next(it) for _ in range(5)]  # 20 positions = two epochs
    flat = sum(batches, [])
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert flat[:10] != flat[10:]
    later = iter(IndexStream(10, 4, seed=3, start_step=2))
    assert [next(later) for _ in range(3)] == batches[2:]


def test_trainer_rejects_resolution_mismatch(flat_folder, tmp_path):
    with pytest.raises(InputError, match="resolution"):
        Trainer(TrainingOptions(**dict(TINY, resolution=16)), ImageDataset(flat_folder, resolution=8), tmp_path)


def test_loaded_generator_is_g_ema(flat_folder, tmp_path):
    trainer = Trainer(TrainingOptions(kimg=0.032, snap_kimg=100, **TINY), ImageDataset(flat_folder, resolution=8), tmp_path)
    path = trainer.train(progress=False)
    z = torch.from_numpy(np.random.RandomState(0).randn(3, 16)).float()
    with torch.no_grad():
        assert torch.equal(load_generator(path)(z, noise_mode="const"), trainer.G_ema(z, noise_mode="const"))
