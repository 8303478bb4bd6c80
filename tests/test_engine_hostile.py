"""Careless and hostile inputs to the evaluation options, the reference service and its state folders: one clear
InputError before any work (never a TypeError from inside a run, never a wrong number), and state folders of the
version before the reference service resumed."""

import json

import numpy as np
import pytest
import torch

from stylegan_core.errors import InputError
from stylegan_metrics import evaluate
from stylegan_metrics.engine.options import EvaluationOptions
from stylegan_metrics.engine.state import RunState
from stylegan_metrics.reference import compute_reference_stats
from helpers import Colours, CrashingQuadrants, Quadrants, quadrant_reference, tiny_generator, write_disc_images

pytestmark = pytest.mark.usefixtures("one_thread")
OPTIONS = dict(batch_size=4, chunk_size=4, device="cpu", progress=False)


class Fingerprinted(torch.utils.data.Dataset):
    """A dataset object the reference accepts: 4 black images and a fingerprint."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(3, 16, 16, dtype=torch.uint8)

    def fingerprint(self):
        return {"black": 4}


REFUSED = {  # option -> (value, a piece of the message)
    "batch_size": ("4", "the batch size must be an integer >= 1, not '4'"),
    "seed": (1.5, "the seed must be an integer >= 0, not 1.5"),
    "chunk_size": (0, "the chunk size must be an integer >= 1, not 0"),
    "workers": (-1, "image-decoding workers must be an integer >= 0, not -1"),
    "feature_batch_size": (0, "the feature batch size must be an integer >= 1, not 0"),
    "precision": ("fp16", "precision must be one of"),
    "class_index": ("1", "the class index (--class) must be an integer >= 0, not '1'"),
    "data": (5, "reference data of type int"),
    "gen": (quadrant_reference(), "generated images of type ReferenceStats"),
    "weights": ({1: "a.pth"}, "weights must be a file path or a dict {network name: file path}"),
    "classifier": ("toyfaces", "the attribute classifier must be a torch module"),
}


@pytest.mark.parametrize("option", REFUSED)
def test_options_of_the_wrong_kind_are_one_input_error(option):
    value, message = REFUSED[option]
    with pytest.raises(InputError) as e:
        EvaluationOptions(**{option: value})
    assert message in str(e.value)


@pytest.mark.parametrize("value", [True, 1.0, -1])
def test_a_class_index_that_is_no_class_is_refused(value):
    with pytest.raises(InputError, match="the class index"):
        EvaluationOptions(class_index=value)


def test_the_kinds_that_are_meant_pass(tmp_path):
    EvaluationOptions(data=tmp_path, gen=str(tmp_path / "g.npz"), weights={"inception-v3": tmp_path / "w.pth"},
                      classifier=Colours(), class_index=0)
    EvaluationOptions(data=quadrant_reference(), weights=str(tmp_path / "w.pth"))
    EvaluationOptions(data=Fingerprinted())


def test_reference_data_of_another_type_is_refused_before_the_run(metrics_home):
    net = CrashingQuadrants()
    for data in (5, [1, 2], b"/some/folder"):
        with pytest.raises(InputError, match="reference data of type"):
            evaluate(tiny_generator(16), ["fid8"], data=data, features=net, **OPTIONS)
    assert net.calls == 0


@pytest.mark.parametrize("max_items", [0, -3, "8", 8.0, True])
def test_compute_reference_stats_refuses_a_count_that_is_no_count(tmp_path, metrics_home, max_items):
    data = write_disc_images(tmp_path / "real", 12, size=16)
    with pytest.raises(InputError, match="max_items must be an integer >= 2"):  # -3 once gave 9 images' statistics
        compute_reference_stats(data, features=Quadrants(), max_items=max_items, **OPTIONS)


def test_compute_reference_stats_takes_a_numpy_count(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "real", 12, size=16)
    assert compute_reference_stats(data, features=Quadrants(), max_items=np.int64(8), **OPTIONS).n == 8


@pytest.mark.parametrize("kind", ["npz", "ReferenceStats", "None"])
def test_compute_reference_stats_refuses_statistics(tmp_path, metrics_home, kind):
    data = {"npz": tmp_path / "ref.npz", "ReferenceStats": quadrant_reference(), "None": None}[kind]
    with pytest.raises(InputError, match=f"statistics are computed from images: .*not .*{kind}"):
        compute_reference_stats(data, features=Quadrants(), **OPTIONS)


def test_a_weights_file_no_network_reads_is_refused(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "real", 8, size=16)
    net = CrashingQuadrants()
    with pytest.raises(InputError, match="no metric of this evaluation runs a standard network"):
        evaluate(tiny_generator(16), ["fid8"], data=data, features=net, weights=tmp_path / "w.pth", **OPTIONS)
    assert net.calls == 0


def test_a_manifest_without_a_key_of_the_run_is_refused_by_name(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"state_version": 1, "num": 8, "max_items": None}))
    with pytest.raises(InputError, match="max_items: null there, absent now"):
        RunState(folder, {"num": 8})


@pytest.mark.parametrize("name,max_real", [("fid8", 8), ("fid12_full", None)])
def test_reference_state_is_keyed_as_before_and_resumes(tmp_path, metrics_home, name, max_real):
    """The reference chunks of a crashed FID carry the key the version before the reference service wrote
    (max_items included), so that its state folders resume; the resumed value is that of a run without state."""
    data = write_disc_images(tmp_path / "real", 12, size=16)
    state = tmp_path / "state"
    with pytest.raises(RuntimeError):
        evaluate(tiny_generator(16), [name], data=data, features=CrashingQuadrants(fail_at=2), state_dir=state,
                 **OPTIONS)
    manifest = json.loads((state / f"{name}-reference" / "manifest.json").read_text())
    num = 8 if max_real else 12
    assert manifest == {"state_version": 1, "run": "reference-stats", "data": manifest["data"], "max_items": max_real,
                        "features": manifest["features"], "num": num, "chunk_size": 4}  # the version before's key
    assert [p.name for p in sorted((state / f"{name}-reference").glob("chunk-*.npz"))] == ["chunk-000000.npz"]
    net = CrashingQuadrants()
    [resumed] = evaluate(tiny_generator(16), [name], data=data, features=net, state_dir=state, **OPTIONS)
    assert net.calls == (num - 4) // 4 + num // 4  # the reference without its saved chunk, then the generated side
    assert not state.exists()
    for path in (metrics_home / "stats").iterdir():
        path.unlink()
    [fresh] = evaluate(tiny_generator(16), [name], data=data, features=CrashingQuadrants(), **OPTIONS)
    assert repr(resumed.value) == repr(fresh.value)



def test_numpy_integers_are_options_and_bad_calls_are_one_line(tmp_path, metrics_home):
    o = EvaluationOptions(batch_size=np.int64(4), seed=np.int32(3), chunk_size=np.int64(8), workers=np.int64(0))
    assert (o.batch_size, o.seed, o.chunk_size, o.workers) == (4, 3, 8, 0)
    assert all(type(v) is int for v in (o.batch_size, o.seed, o.chunk_size, o.workers))
    with pytest.raises(InputError, match="a list of names or one comma-separated string, not NoneType"):
        evaluate(tiny_generator(16), None, device="cpu")

    class Broken(Fingerprinted):
        def fingerprint(self):
            raise RuntimeError("no database connection")
    with pytest.raises(InputError, match=r"Broken.fingerprint\(\) failed: RuntimeError: no database connection"):
        evaluate(tiny_generator(16), ["fid4_full"], data=Broken(), features=Quadrants(), device="cpu",
                 progress=False)
    data = write_disc_images(tmp_path / "real", 4, size=16)
    with pytest.raises(InputError, match="weights file .* given, but no metric"):
        compute_reference_stats(data, features=Quadrants(), weights=tmp_path / "x.pth", device="cpu", progress=False)
