"""The sampling scheme on the engine: its version in every result and state key, NaN images counted on the device
and refused once per call, and feature networks fed more images per call than the generator makes."""

import json

import pytest
import torch

from stylegan_core import InputError
from stylegan_metrics import evaluate, fid
from stylegan_metrics.engine import runner
from stylegan_metrics.engine.options import EvaluationOptions
from stylegan_metrics.engine.sampling import GeneratedBatch, generate_batches, grouped, to_device
import helpers
from helpers import mean_squared_l2, quadrant_reference, tiny_generator

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU


class Quadrants(helpers.Quadrants):
    """helpers.Quadrants that counts its calls, and with `fail_at` set fails once that many calls have been made (a
    crash in the middle of a run)."""

    calls, fail_at = 0, None

    def forward(self, x):
        if Quadrants.fail_at is not None and Quadrants.calls >= Quadrants.fail_at:
            raise RuntimeError("crash")
        Quadrants.calls += 1
        return super().forward(x)


def test_every_result_records_sampling_version_2():
    G = tiny_generator(16)
    results = evaluate(G, ["fid16_full", "ppl8_wend"], data=quadrant_reference(), features=Quadrants(),
                       similarity=mean_squared_l2, batch_size=8, device="cpu", progress=False)
    assert [r.params["sampling_version"] for r in results] == [2, 2]
    assert results[0].params["generator_precision"] == "fp32"


def test_saved_chunks_of_another_sampling_version_are_never_used(tmp_path, monkeypatch):
    G = tiny_generator(16)
    kwargs = dict(num_gen=16, batch_size=8, chunk_size=8, device="cpu", progress=False, state_dir=tmp_path)
    monkeypatch.setattr(Quadrants, "calls", 0)
    monkeypatch.setattr(Quadrants, "fail_at", 1)
    monkeypatch.setattr(runner, "SAMPLING_VERSION", 1)  # a run of the old scheme that crashes after its first chunk
    with pytest.raises(RuntimeError, match="crash"):
        fid(G, quadrant_reference(), features=Quadrants(), **kwargs)
    monkeypatch.setattr(Quadrants, "fail_at", None)
    [manifest] = tmp_path.glob("*/manifest.json")
    assert json.loads(manifest.read_text())["sampling_version"] == 1
    monkeypatch.setattr(runner, "SAMPLING_VERSION", 2)
    with pytest.raises(InputError, match="sampling_version: 1 there, 2 now"):
        fid(G, quadrant_reference(), features=Quadrants(), **kwargs)


def nan_first_row(module, args, out):
    out = out.clone()
    out[0] = float("nan")
    return out


@pytest.mark.parametrize("each", [False, True])
def test_nan_images_refused_per_batch_or_once_at_the_end(each):
    G = tiny_generator(16)
    G.synthesis.register_forward_hook(nan_first_row)  # the first row of every call (batches are padded to 16)
    taken = []
    with pytest.raises(InputError, match="NaN or Inf pixels in 1 of 4 images" if each else "in 3 of 10 images"):
        for batch in generate_batches(G, 10, batch_size=4, seed=0, device=CPU, check_each_batch=each):
            taken.append(batch.start)
    assert taken == ([] if each else [0, 4, 8])  # deferred: the count is read once, after the last batch


def test_grouped_batches():
    def batch(start, n):
        z = torch.arange(start, start + n).float()[:, None]
        return GeneratedBatch(start, z, z[:, None], z[:, :, None, None])

    batches = [batch(0, 4), batch(4, 4), batch(8, 4), batch(12, 3)]
    out = list(grouped(iter(batches), 8))
    assert [(b.start, b.z.shape[0]) for b in out] == [(0, 8), (8, 7)]
    assert torch.equal(torch.cat([b.images for b in out]).flatten(), torch.arange(15).float())
    assert [b.start for b in grouped(iter(batches), 1)] == [0, 4, 8, 12]


def test_feature_batches_larger_than_the_generators_give_the_same_fid():
    G = tiny_generator(16, seed=2)
    results = {}
    for feature_batch in (None, 12):
        Quadrants.calls = 0
        [results[feature_batch]] = runner.run_metrics(G, [_fid24()], EvaluationOptions(
            data=quadrant_reference(), features=Quadrants(), batch_size=4, device="cpu", progress=False,
            feature_batch_size=feature_batch))
        results[feature_batch] = (results[feature_batch].value, Quadrants.calls)
    assert results[None][1] == 6 and results[12][1] == 2  # 24 images: 4 per call, then 12 per call
    assert results[None][0] == results[12][0]  # bit for bit on the CPU
    with pytest.raises(InputError, match="feature batch size"):
        EvaluationOptions(data=quadrant_reference(), features=Quadrants(), device="cpu", progress=False,
                          feature_batch_size=0)


def _fid24():
    from stylegan_metrics.metrics.fid import FID

    return FID("fid24_full", num=24, max_real=None, cov="biased")


def test_to_device_on_the_cpu_is_the_tensor_itself():
    t = torch.arange(5)
    assert to_device(t, CPU) is t
