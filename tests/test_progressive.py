"""Progressive growing (StyleGAN1): NVIDIA's lod schedule, the fade of G, D and the reals, the trainer's phases
(minibatch, learning rate, Adam resets, style mixing), `train --progressive`, its snapshots and exact resume."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stylegan_core import (Discriminator, InputError, Trainer, TrainingOptions, load_checkpoint,
                           load_discriminator, load_generator, save_checkpoint, train)
from stylegan_core.data.datasets import ImageDataset
from stylegan_core.training.data_order import IndexStream
from stylegan_core.training.progressive import (LR_PER_RES, MINIBATCH_PER_RES, new_level, parse_per_resolution,
                                                process_reals, schedule_lod, training_phase)
from stylegan_core.training.updates import active_ws, sample_ws, update_ema
from stylegan_metrics_cli.main import main
from helpers import tiny_generator, write_disc_images

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU

NET = dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
# 16 px from 8 px: 32 images at lod 1, a fade over 64 images, then lod 0.
GROW = dict(resolution=16, progressive=True, lod_training_kimg=0.032, lod_transition_kimg=0.064,
            minibatch_per_res={8: 16, 16: 8}, snap_kimg=100, **NET)


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero biases and noise strengths, so that a wrong wiring shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("bias", "strength")):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module


# ---- the schedule -------------------------------------------------------------------------------
def test_lod_schedule_by_hand():
    # 32 px from 8 px: lod 2 for 0.6 kimg, fade to 1 over 0.4 kimg, lod 1 for 0.6 kimg, fade to 0, then 0.
    def lod(images):
        return schedule_lod(images, 32, 8, training_kimg=0.6, transition_kimg=0.4)

    expected = {0: 2.0, 599: 2.0, 600: 2.0, 700: 1.75, 800: 1.5, 999: 1.0025, 1000: 1.0, 1599: 1.0, 1700: 0.75,
                1900: 0.25, 2000: 0.0, 2500: 0.0, 10_000: 0.0}
    for images, value in expected.items():
        assert lod(images) == pytest.approx(value, abs=1e-12), images
    assert schedule_lod(0, 32, 4, 0.6, 0.4) == 3.0                 # NVIDIA's default start at 4x4 would be lod 3
    assert schedule_lod(1234, 16, 8, 0.5, 0.0) == 0.0              # no fade: whole steps only
    assert schedule_lod(499, 16, 8, 0.5, 0.0) == 1.0


def test_training_phase_takes_minibatch_and_lr_at_the_faded_in_resolution():
    opts = TrainingOptions(resolution=32, progressive=True, lod_training_kimg=0.6, lod_transition_kimg=0.4,
                           batch=5, lr=0.001, minibatch_per_res={8: 12, 16: 6}, lr_per_res={16: 0.003})
    phases = {n: training_phase(opts, n) for n in (0, 800, 1700, 2000)}
    assert [(p.lod, p.resolution, p.minibatch, p.lr) for p in phases.values()] == [
        (2.0, 8, 12, 0.001), (1.5, 16, 6, 0.003), (0.75, 32, 5, 0.001), (0.0, 32, 5, 0.001)]
    assert training_phase(opts, 800, world=4).minibatch == 4      # rounded down to a multiple of the processes
    third = training_phase(opts, 700 + 1 / 3)                      # the lod the float32 buffers hold
    assert third.lod == float(np.float32(schedule_lod(700 + 1 / 3, 32, 8, 0.6, 0.4)))
    # NVIDIA resets Adam when the floor or the ceiling of the lod changes: a fade starting or ending.
    pairs = [(2.0, 2.0), (1.99, 2.0), (1.5, 1.99), (1.0, 1.01), (1.0, 1.0), (0.0, 0.5)]
    assert [new_level(a, b) for a, b in pairs] == [False, True, False, True, False, True]


def test_options_defaults_checks_and_round_trip():
    grown = TrainingOptions(resolution=64, progressive=True)
    schedule = (grown.lod_initial_resolution, grown.lod_training_kimg, grown.lod_transition_kimg)
    assert (grown.batch, grown.lr, schedule) == (4, 0.001, (8, 600.0, 600.0))
    assert grown.minibatch_per_res == MINIBATCH_PER_RES and grown.lr_per_res == LR_PER_RES
    fixed = TrainingOptions(resolution=64)
    assert (fixed.batch, fixed.lr, fixed.minibatch_per_res) == (32, 0.002, None)
    saved = json.loads(json.dumps(grown.to_dict()))                # snapshot configs are JSON-safe
    assert saved["minibatch_per_res"]["128"] == 16
    assert TrainingOptions.from_dict(saved) == grown
    grown.check_resumable(saved, "run")
    with pytest.raises(InputError, match="lod_transition_kimg: run has 600.0, asked 300"):
        dataclasses.replace(grown, lod_transition_kimg=300).check_resumable(saved, "run")
    with pytest.raises(InputError, match="progressive growing applies to arch='stylegan' only"):
        TrainingOptions(resolution=64, arch="stylegan2", progressive=True)
    with pytest.raises(InputError, match="lod_training_kimg apply to progressive growing only"):
        TrainingOptions(resolution=64, lod_training_kimg=10)
    with pytest.raises(InputError, match="lod_initial_resolution must be a power of two"):
        TrainingOptions(resolution=64, progressive=True, lod_initial_resolution=128)
    with pytest.raises(InputError, match="never grow"):
        TrainingOptions(resolution=64, progressive=True, lod_training_kimg=0, lod_transition_kimg=0)
    assert parse_per_resolution("128:16, 256:8", int, "--x") == {128: 16, 256: 8}
    assert parse_per_resolution("", float, "--x") == {}
    for bad, message in [("128=16", "not RESOLUTION:VALUE"), ("96:4", "not a power of two"), ("64:0", "positive"),
                         ("64:nan", "positive")]:
        with pytest.raises(InputError, match=message):
            parse_per_resolution(bad, float, "--x")


def test_index_stream_with_a_varying_batch_is_the_same_stream():
    flat = iter(IndexStream(10, 1, seed=3))
    stream = [next(flat)[0] for _ in range(40)]
    sizes = lambda position: 3 if position < 9 else 5  # noqa: E731
    varying = iter(IndexStream(10, sizes, seed=3, start_position=0))
    batches = [next(varying) for _ in range(7)]
    assert [len(b) for b in batches] == [3, 3, 3, 5, 5, 5, 5] and sum(batches, []) == stream[:29]
    resumed = iter(IndexStream(10, sizes, seed=3, start_position=14))
    assert next(resumed) == stream[14:19]
    halves = [next(iter(IndexStream(10, lambda p: 6, seed=3, rank=r, world=2, start_position=0))) for r in (0, 1)]
    assert halves == [stream[0:3], stream[3:6]]


# ---- the networks at a level of detail --------------------------------------------------------------
def test_generator_lod_0_is_full_resolution_and_a_fraction_is_nvidias_fade():
    G = randomized(tiny_generator(16, progressive=True))
    fixed = tiny_generator(16)
    state = {k.replace("synthesis.to_rgbs.2.", "synthesis.to_rgb."): v for k, v in G.state_dict().items()
             if not k.startswith(("synthesis.to_rgbs.0", "synthesis.to_rgbs.1")) and k != "synthesis.lod"}
    fixed.load_state_dict(state)
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    syn = G.synthesis
    with torch.no_grad():
        ws = G.mapping(z)
        assert torch.equal(syn(ws, noise_mode="const"), fixed.synthesis(ws, noise_mode="const"))
        features, x = [], syn.const.expand(3, -1, -1, -1)
        for i, layer in enumerate(syn.layers):
            x = layer(x, ws[:, i], "const")
            if i % 2:
                features.append(x)  # after each resolution's two layers: 4, 8, 16
        rgb = [to_rgb(f) for to_rgb, f in zip(syn.to_rgbs, features)]
        up = lambda img, k: img.repeat_interleave(k, 2).repeat_interleave(k, 3)  # noqa: E731
        syn.lod.fill_(0.25)  # 16 px, a quarter of the way back to 8 px
        torch.testing.assert_close(syn(ws, noise_mode="const"), rgb[2] * 0.75 + up(rgb[1], 2) * 0.25)
        syn.lod.fill_(1.5)   # 8 px half faded toward 4 px, shown at 16 px
        torch.testing.assert_close(syn(ws, noise_mode="const"), up(rgb[1] * 0.5 + up(rgb[0], 2) * 0.5, 2))


def nvidia_linear_discriminator(D: Discriminator, img: torch.Tensor, lod: float) -> torch.Tensor:
    """NVIDIA's D_basic with structure='linear': every block runs; after block k the features are pulled toward
    fromRGB of the image downscaled to that size by clip(lod - k, 0, 1)."""
    act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = act(D.from_rgbs[0](img))
    for k, block in enumerate(D.blocks):
        x = block(x)
        img = F.avg_pool2d(img, 2)
        y = act(D.from_rgbs[k + 1](img))
        x = x + (y - x) * min(max(lod - k, 0.0), 1.0)
    x = act(D.conv(D.mbstd(x)))
    return D.out(act(D.fc(x.flatten(1))))


def test_progressive_discriminator_matches_nvidias_blend_and_the_fixed_one_at_lod_0(tmp_path):
    torch.manual_seed(0)
    D = randomized(Discriminator(16, channel_base=128, channel_max=16, progressive=True))
    assert D.config["progressive"] and D.max_lod == 2 and len(D.from_rgbs) == 3
    fixed = Discriminator(16, channel_base=128, channel_max=16)
    assert "progressive" not in fixed.config and not hasattr(fixed, "lod")
    fixed.load_state_dict({k.replace("from_rgbs.0.", "from_rgb."): v for k, v in D.state_dict().items()
                           if not k.startswith(("from_rgbs.1", "from_rgbs.2")) and k != "lod"})
    img = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(D(img), fixed(img))
        for lod in (0.0, 0.3, 1.0, 1.7, 2.0):
            D.lod.fill_(lod)
            torch.testing.assert_close(D(img), nvidia_linear_discriminator(D, img, lod), rtol=1e-5, atol=1e-6)
        D.lod.fill_(0.5)  # by hand: the 8x8 features are half block(16 px), half fromRGB of the 8 px image
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        x = D.blocks[0](act(D.from_rgbs[0](img)))
        x = D.blocks[1](0.5 * x + 0.5 * act(D.from_rgbs[1](F.avg_pool2d(img, 2))))
        torch.testing.assert_close(D(img), D.out(act(D.fc(act(D.conv(D.mbstd(x))).flatten(1)))))
        save_checkpoint(tmp_path / "d.pt", config={"D": D.config}, D=D)
        loaded = load_discriminator(tmp_path / "d.pt")
        assert float(loaded.lod) == 0.5 and torch.equal(loaded(img), D(img))
        D.lod.fill_(2.5)
        with pytest.raises(ValueError, match="lod must lie in"):
            D(img)


def test_process_reals_is_nvidias_fade_and_upscale():
    real = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))

    def nvidia(x: np.ndarray, lod: float) -> np.ndarray:  # reshape / mean / tile, as NVIDIA's TensorFlow code
        level = math.floor(lod)
        n, c, h, w = x.shape
        f = 2 ** level
        x = x.reshape(n, c, h // f, f, w // f, f).mean(axis=(3, 5))  # the dataset's level floor(lod)
        s = x.shape
        y = np.tile(x.reshape(n, c, s[2] // 2, 2, s[3] // 2, 2).mean(axis=(3, 5), keepdims=True), (1, 1, 1, 2, 1, 2))
        x = x + (y.reshape(s) - x) * (lod - level)
        return np.tile(x.reshape(n, c, s[2], 1, s[3], 1), (1, 1, 1, f, 1, f)).reshape(n, c, h, w)

    assert torch.equal(process_reals(real, 0.0), real)
    for lod in (0.25, 1.0, 1.5, 1.75, 2.0):  # the lods of a 16 px network
        torch.testing.assert_close(process_reals(real, lod), torch.from_numpy(nvidia(real.numpy(), lod)))


def test_style_mixing_stays_in_the_active_layers_and_the_ema_copies_the_lod():
    G = tiny_generator(16, progressive=True)  # num_ws 6: two per resolution 4, 8, 16
    cuts = {}
    for lod, active in ((0.0, 6), (0.5, 6), (1.0, 4), (1.75, 4), (2.0, 2)):
        G.synthesis.lod.fill_(lod)
        assert active_ws(G) == active
        seen = set()
        for seed in range(60):
            torch.manual_seed(seed)
            ws = sample_ws(G, 2, mixing_prob=1.0, device=torch.device("cpu"))
            seen |= {i for i in range(1, 6) if not torch.equal(ws[:, i], ws[:, i - 1])}
        cuts[lod] = seen
    assert cuts == {0.0: {1, 2, 3, 4, 5}, 0.5: {1, 2, 3, 4, 5}, 1.0: {1, 2, 3}, 1.75: {1, 2, 3}, 2.0: {1}}
    assert active_ws(tiny_generator(16)) == 6
    G_ema = tiny_generator(16, progressive=True)
    update_ema(G_ema, G, 0.9)
    assert float(G_ema.synthesis.lod) == 2.0


# ---- the trainer -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def discs(tmp_path_factory):
    return write_disc_images(tmp_path_factory.mktemp("discs") / "discs", 64, size=16)


def test_trainer_follows_the_schedule_and_resets_adam_per_level(discs, tmp_path):
    opts = TrainingOptions(kimg=0.16, lr_per_res={16: 0.003}, **GROW)
    trainer = Trainer(opts, ImageDataset(discs, resolution=16), tmp_path / "run")
    assert float(trainer.G.synthesis.lod) == float(trainer.D.lod) == float(trainer.G_ema.synthesis.lod) == 1.0
    seen, original = [], trainer.train_step

    def step(real):
        phase = trainer.phase()
        original(real)
        lr = trainer.G_opt.param_groups[0]["lr"], trainer.D_opt.param_groups[0]["lr"]
        seen.append((phase.lod, real.shape[0], float(trainer.G.synthesis.lod), float(trainer.D.lod),
                     float(trainer.G_ema.synthesis.lod), lr))

    trainer.train_step = step
    trainer.train(progress=False)
    # images before each step: 0, 16 at 8 px (lod 1); 32 still lod 1 (minibatch 16); then 8 per step.
    images = [0, 16, 32] + list(range(48, 160, 8))
    lods = [float(np.float32(schedule_lod(n, 16, 8, 0.032, 0.064))) for n in images]
    assert [s[0] for s in seen] == lods and lods[3] == 0.75 and lods[-1] == 0.0
    assert [s[1] for s in seen] == [16, 16, 16] + [8] * (len(images) - 3)
    assert all(s[2] == s[3] == s[4] == s[0] for s in seen)  # G, D and G_ema all at the step's lod
    # the table's lr at 16 px, NVIDIA's base lr (the default of a progressive run) at 8 px
    assert [s[5] for s in seen] == [(0.001, 0.001)] * 3 + [(0.003, 0.003)] * (len(images) - 3)
    assert trainer.images_seen == 160
    # Adam restarted when the fade began (48 images) and when it ended (lod 0 first at 96 images).
    since_reset = len(images) - images.index(96)
    mapping_weight = next(trainer.G.mapping.parameters())  # used by every G step
    assert int(trainer.G_opt.state[mapping_weight]["step"]) == since_reset
    assert int(trainer.D_opt.state[trainer.D.out.weight]["step"]) == since_reset


def test_resume_mid_fade_reproduces_the_uninterrupted_run(discs, tmp_path):
    opts = TrainingOptions(kimg=0.16, **GROW)
    straight = train(discs, tmp_path / "a", opts, progress=False)
    half = dataclasses.replace(opts, kimg=0.064)  # stops at 64 images: mid-fade, after the first Adam reset
    first = train(discs, tmp_path / "b", half, progress=False)
    saved = load_checkpoint(first)
    assert saved["lod"] == 0.625 and float(saved["G_ema"]["synthesis.lod"]) == 0.625
    resumed = train(discs, tmp_path / "b", opts, resume=True, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["step"] == b["step"] and a["images_seen"] == b["images_seen"] == 160 and a["lod"] == b["lod"] == 0.0
    for part in ("G", "G_ema", "D"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for part in ("G_opt", "D_opt"):
        for index, state in a[part]["state"].items():
            for key, value in state.items():
                assert torch.equal(value, b[part]["state"][index][key]), (part, index, key)
    with pytest.raises(InputError, match="lod_training_kimg"):
        train(discs, tmp_path / "b", dataclasses.replace(opts, lod_training_kimg=0.05), resume=True, progress=False)


def cli(*args):
    return CliRunner().invoke(main, ["train", *map(str, args)])


def test_cli_progressive_run_fades_in_and_its_snapshots_evaluate(discs, tmp_path, metrics_home):
    import stylegan_metrics

    run = tmp_path / "run"
    net = ["--z-dim", 16, "--w-dim", 16, "--mapping-layers", 2, "--cbase", 128, "--cmax", 16]
    result = cli("--data", discs, "--out", run, "--resolution", 16, *net, "--progressive", "--lod-training-kimg", 0.5,
                 "--lod-transition-kimg", 1, "--minibatch-per-res", "8:100,16:50", "--kimg", 2, "--snap", 1,
                 "--tick", 0.25, "--no-progress", "--device", "cpu")
    assert result.exit_code == 0, result.output
    log = (run / "log.txt").read_text().splitlines()
    assert "progressive growing from 8x8" in log[0]
    snapshots = [line.split() for line in log if line.startswith("snapshot ")]
    assert [(s[1], s[-1]) for s in snapshots] == [("network-snapshot-000001.pt", "0.55"),
                                                  ("network-snapshot-000002.pt", "0")]
    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    lods = [t["Progress/lod"]["mean"] for t in ticks]
    assert lods[0] == 1.0 and lods[-1] == 0.0 and lods == sorted(lods, reverse=True) and 0 < lods[3] < 1
    minibatches = [t["Progress/minibatch"]["mean"] for t in ticks]
    assert minibatches[:2] == [100, 100] and minibatches[-1] == 50
    tick_lines = [line for line in log if line.startswith("tick ")]
    assert len(tick_lines) == len(ticks) and " lod 1.00  minibatch 100 " in tick_lines[0]
    assert (run / "fakes000001.png").is_file()

    mid, end = load_generator(run / "network-snapshot-000001.pt"), load_generator(run / "network-snapshot-000002.pt")
    assert mid.config["progressive"] and float(mid.synthesis.lod) == pytest.approx(0.55)
    assert float(end.synthesis.lod) == 0
    with torch.no_grad():
        images = mid(torch.randn(4, 16), noise_mode="const")
    assert images.shape == (4, 3, 16, 16)
    results = [stylegan_metrics.evaluate(G, ["fid20_full"], data=str(discs), features="toyfaces", device="cpu",
                                         progress=False)[0].results["fid20_full"] for G in (mid, end)]
    assert all(math.isfinite(r) and r > 0 for r in results) and results[0] != results[1]


def test_cli_refuses_progressive_stylegan2_and_lod_options_without_it(discs, tmp_path):
    base = ["--data", discs, "--resolution", 16, "--kimg", 0.016]
    result = cli(*base, "--out", tmp_path / "a", "--arch", "stylegan2", "--progressive")
    assert result.exit_code == 2 and "progressive growing applies to arch='stylegan' only" in result.output
    result = cli(*base, "--out", tmp_path / "b", "--lod-transition-kimg", 10)
    assert result.exit_code == 2 and "apply to progressive growing only" in result.output
    result = cli(*base, "--out", tmp_path / "c", "--progressive", "--minibatch-per-res", "16:x")
    assert result.exit_code == 2 and "--minibatch-per-res: '16:x' is not RESOLUTION:VALUE" in result.output
    assert not any((tmp_path / d).exists() for d in "abc")
