"""The random streams of the metrics: distinct ids in one table (engine.sampling.STREAMS), each user drawing from
its own entry, and a few rows pinned to their values so that no draw moves."""

import types

import numpy as np
import torch

from stylegan_metrics.engine.sampling import BLOCK, STREAMS, latents, noise_seeds, table_rows
from stylegan_metrics.metrics import ppl
from stylegan_metrics.metrics.equivariance import group_uniforms
from helpers import labels_of, tiny_generator, write_zip_dataset


def uniform(columns: int):
    return lambda g: torch.rand(BLOCK, columns, generator=g)


def test_stream_ids_are_distinct():
    assert len(set(STREAMS.values())) == len(STREAMS)


def test_table_rows_by_hand_across_a_block_boundary():
    """Row i of a stream is row i % BLOCK of block i // BLOCK, drawn from a generator seeded by (seed, stream,
    block) alone."""
    def block(b: int) -> torch.Tensor:
        state = np.random.SeedSequence([5, STREAMS["z"], b]).generate_state(2, dtype=np.uint64)[0]
        return torch.randn(BLOCK, 3, generator=torch.Generator().manual_seed(int(state) & ((1 << 63) - 1)))

    want = torch.cat([block(0)[BLOCK - 2:], block(1)[:3]])  # rows BLOCK - 2 .. BLOCK + 2
    assert torch.equal(latents(5, BLOCK - 2, 5, 3), want)
    assert torch.equal(table_rows(5, STREAMS["z"], BLOCK - 2, 5, lambda g: torch.randn(BLOCK, 3, generator=g)), want)


def test_latents_and_noise_seeds_draw_from_their_entries():
    want = table_rows(2, STREAMS["z"], 7, 4, lambda g: torch.randn(BLOCK, 6, generator=g))
    assert torch.equal(latents(2, 7, 4, 6), want)
    want = table_rows(2, STREAMS["noise"], 7, 4,
                      lambda g: torch.randint(0, 2**62, (BLOCK,), generator=g, dtype=torch.int64))
    assert torch.equal(noise_seeds(2, 7, 4), want)


def test_ppl_draws_z0_z1_and_t_from_their_entries(monkeypatch):
    G, seed, first, n = tiny_generator(16), 2, 3, 4
    calls = []
    monkeypatch.setattr(ppl, "slerp", lambda z0, z1, t: calls.append((z0, z1, t)) or torch.lerp(z0, z1, t))
    ppl.pair_distances(G, lambda a, b: (a - b).square().flatten(1).sum(1), [("z", "full")], seed=seed, first=first,
                       n=n, epsilon=1e-4, crop=False, downsample="ada", device=torch.device("cpu"))
    z0, z1, t = calls[0]  # slerp(z0, z1, t), then slerp(z0, z1, t + epsilon)
    assert torch.equal(z0, latents(seed, first, n, G.z_dim, stream=STREAMS["ppl_z0"]))
    assert torch.equal(z1, latents(seed, first, n, G.z_dim, stream=STREAMS["ppl_z1"]))
    assert torch.equal(t, table_rows(seed, STREAMS["ppl_t"], first, n, uniform(1)))


def test_a_label_is_the_row_its_entry_draws(tmp_path):
    classes = [0, 1, 2, 3, 1, 2]
    images = [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(len(classes))]
    data = write_zip_dataset(tmp_path / "data.zip", images, labels=classes)
    c = labels_of(types.SimpleNamespace(c_dim=4, img_resolution=16), data=data, seed=4)(5, 9)  # [9, 4] one-hot
    index = table_rows(4, STREAMS["label"], 5, 9, lambda g: torch.randint(0, len(classes), (BLOCK,), generator=g))
    assert c.argmax(1).tolist() == [classes[i] for i in index.tolist()]


def test_an_equivariance_group_draws_from_its_entry():
    assert torch.equal(group_uniforms(6, 300), table_rows(6, STREAMS["eq_transform"], 300, 1, uniform(2))[0])


def test_pinned_rows_of_each_stream():
    """Values of the streams as drawn before they were gathered in one table: any change of an id, the block
    seeding or a draw shows here."""
    assert latents(0, 0, 2, 4).flatten()[:3].tolist() == [0.44452762603759766, -1.1141915321350098,
                                                          -0.1954551637172699]
    assert latents(5, 300, 2, 3)[1].tolist() == [-0.9898611307144165, -0.5474727749824524, -0.2778870165348053]
    assert noise_seeds(0, 0, 3).tolist() == [4117738445561684410, 2069098825264608138, 4191176882527785602]
    assert latents(0, 0, 1, 4, stream=STREAMS["ppl_z0"])[0, :3].tolist() == [1.8119635581970215, -0.22610580921173096,
                                                                             -0.8242537379264832]
    assert latents(0, 0, 1, 4, stream=STREAMS["ppl_z1"])[0, :3].tolist() == [0.3776181936264038, -0.6755957007408142,
                                                                             -0.5322748422622681]
    assert table_rows(0, STREAMS["ppl_t"], 0, 3, uniform(1)).flatten().tolist() == [
        0.010634958744049072, 0.2133241891860962, 0.24743002653121948]
    assert group_uniforms(0, 1).tolist() == [0.7876065373420715, 0.08272385597229004]
    labels = table_rows(0, STREAMS["label"], 0, 5, lambda g: torch.randint(0, 10, (BLOCK,), generator=g))
    assert labels.tolist() == [9, 9, 6, 3, 4]
