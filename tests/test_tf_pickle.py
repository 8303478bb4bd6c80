"""NVIDIA's TensorFlow pickles (StyleGAN1, StyleGAN2, CelebA-HQ classifiers): read as data, same numbers as TensorFlow.

The fixtures in tests/fixtures/tensorflow were written by scripts/make_tf_fixtures.py, which ran NVIDIA's
own dnnlib.tflib and network code in TensorFlow on seeded random weights and saved what TF computed.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import CheckpointError, Discriminator, Generator, ResidualDiscriminator, load_discriminator, \
    load_generator, save_checkpoint
from stylegan_core.formats.sources import detect_source
from stylegan_core.formats.tf_pickle import read_tf_pickle
from stylegan_core.formats.tf_record import TFNetwork
from stylegan_metrics.networks.classifier import load_classifier
from stylegan_metrics.networks.nvidia_classifier import attribute_from_file_name
from stylegan_metrics_cli.main import main

FIXTURES = Path(__file__).parent / "fixtures" / "tensorflow"
STYLEGAN1 = FIXTURES / "tf-stylegan1-32.pkl"
STYLEGAN2 = FIXTURES / "tf-stylegan2-32.pkl"
CLASSIFIERS = FIXTURES / "tf-classifiers"
RTOL = 1e-4  # relative to the largest magnitude of TF's output

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tf_out():
    with np.load(FIXTURES / "tf-outputs.npz") as f:
        return {k: f[k] for k in f.files}


def assert_matches(ours: torch.Tensor, theirs: np.ndarray) -> None:
    ours = ours.detach().double().numpy()
    assert ours.shape == theirs.shape
    err = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert err < RTOL, f"max deviation {err:.2e} of the largest value"


def fed_images(seed: int, resolution: int) -> torch.Tensor:
    """The images the fixture script fed the discriminators (numpy's legacy generator: the same on every platform)."""
    return torch.from_numpy((np.random.RandomState(seed).standard_normal([4, 3, resolution, resolution]) * 0.5)
                            .astype(np.float32))


# ---- StyleGAN1: G_style (G_mapping + G_synthesis), D_basic ------------------------------------------------
def test_detected_as_tensorflow_under_both_numpy_spellings():
    for path in (STYLEGAN1, STYLEGAN2, FIXTURES / "tf-stylegan1-d256.pkl", *CLASSIFIERS.glob("*.pkl")):
        assert detect_source(path) == "tensorflow"
    assert b"numpy._core.multiarray" in STYLEGAN1.read_bytes()  # numpy 2's name (protocol 4)
    classifier = (CLASSIFIERS / "celebahq-classifier-00-male.pkl").read_bytes()
    assert b"numpy.core.multiarray" in classifier and b"numpy._core" not in classifier  # numpy 1's (protocol 3)


@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.7, 8), (0.5, 4)])
def test_stylegan1_generator(tf_out, psi, cutoff):
    G = load_generator(STYLEGAN1)
    assert G.arch == "stylegan" and G.synthesis.progressive and float(G.synthesis.lod) == 0
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution) == (16, 16, 8, 32)
    z = torch.from_numpy(tf_out["s1_z"])
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
        assert_matches(G.synthesis(ws, noise_mode="const"), tf_out[f"s1_images_psi{psi}_cutoff{cutoff}"])


def test_stylegan1_dlatents_and_gs_not_g(tf_out):
    G = load_generator(STYLEGAN1)
    with torch.no_grad():
        assert_matches(G.mapping(torch.from_numpy(tf_out["s1_z"]), None), tf_out["s1_dlatents"])
    G_train, _, Gs = read_tf_pickle(STYLEGAN1)
    assert Gs.name == "Gs" and np.array_equal(G.mapping.w_avg.numpy(), Gs.variables["dlatent_avg"])
    assert not np.array_equal(Gs.variables["dlatent_avg"], G_train.variables["dlatent_avg"])


@pytest.mark.parametrize("lod", [1.0, 1.3, 2.6, 3.0])
def test_stylegan1_levels_of_detail(tf_out, lod):
    """Fractional lod: NVIDIA's fade between two ToRGB outputs, nearest-upsampled to 32 px."""
    G = load_generator(STYLEGAN1)
    G.synthesis.lod.fill_(lod)
    with torch.no_grad():
        assert_matches(G(torch.from_numpy(tf_out["s1_z"]), None, noise_mode="const"), tf_out[f"s1_images_lod{lod}"])


def test_stylegan1_fused_scale_auto_128px(tf_out):
    """NVIDIA's default: plain up-convolutions below 128 px, a fused (transposed) one at 128 px."""
    G = load_generator(FIXTURES / "tf-stylegan1-g128.pkl")
    assert G.img_resolution == 128 and G.synthesis.progressive
    with torch.no_grad():
        assert_matches(G(torch.from_numpy(tf_out["g128_z"]), None, noise_mode="const"), tf_out["g128_images"])


def test_stylegan1_discriminators(tf_out):
    D = load_discriminator(STYLEGAN1)
    assert D.config["blur"] and D.config["mbstd_num_features"] == 2
    with torch.no_grad():
        assert_matches(D(torch.from_numpy(tf_out["s1_images_psi1.0_cutoffNone"]), None), tf_out["s1_d_scores"])
        D256 = load_discriminator(FIXTURES / "tf-stylegan1-d256.pkl")
        assert_matches(D256(fed_images(200, 256)), tf_out["d256_scores"])


# ---- StyleGAN2: G_main (G_synthesis_stylegan2, 'skip'), D_stylegan2 ('resnet') -------------------------
@pytest.mark.parametrize("psi,cutoff", [(1.0, None), (0.5, None), (0.7, 4)])
def test_stylegan2_generator(tf_out, psi, cutoff):
    G = load_generator(STYLEGAN2)
    assert G.arch == "stylegan2"
    z = torch.from_numpy(tf_out["s2_z"])
    with torch.no_grad():
        if psi == 1.0:
            assert_matches(G.mapping(z, None), tf_out["s2_dlatents"])
        ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
        assert_matches(G.synthesis(ws, noise_mode="const"), tf_out[f"s2_images_psi{psi}_cutoff{cutoff}"])


def test_stylegan2_discriminator(tf_out):
    D = load_discriminator(STYLEGAN2)
    assert isinstance(D, ResidualDiscriminator)
    with torch.no_grad():
        assert_matches(D(torch.from_numpy(tf_out["s2_images_psi1.0_cutoffNone"]), None), tf_out["s2_d_scores"])


def test_convert_keeps_the_images(tmp_path, tf_out):
    out = tmp_path / "G.pt"
    result = CliRunner().invoke(main, ["convert", str(STYLEGAN1), str(out)])
    assert result.exit_code == 0 and "NVIDIA TensorFlow pickle" in result.output, result.output
    G = load_generator(out)
    assert G.config["progressive"]
    with torch.no_grad():
        assert_matches(G(torch.from_numpy(tf_out["s1_z"]), None, noise_mode="const"),
                       tf_out["s1_images_psi1.0_cutoffNone"])


# ---- attribute classifiers ------------------------------------------------------------------------------
@pytest.mark.parametrize("index,name,blur", [(0, "male", False), (1, "smiling", True)])
def test_classifier_build_functions(tf_out, index, name, blur):
    """00 is ProGAN's D_paper (no blur), 01 StyleGAN's D_basic (blur): one logit each, as TF computed it."""
    C = load_classifier(CLASSIFIERS / f"celebahq-classifier-{index:02d}-{name}.pkl")
    assert C.attributes == [name.capitalize()] and C.networks[0].config["blur"] is blur
    with torch.no_grad():
        logits = C(fed_images(300, 256))
    assert logits.shape == (4, 1)
    assert_matches(logits, tf_out[f"classifier{index:02d}_logits"])


def test_classifier_folder(tf_out):
    C = load_classifier(CLASSIFIERS)
    assert C.attributes == ["Male", "Smiling"]
    images = fed_images(300, 256)
    with torch.no_grad():
        logits = C(images)
        assert_matches(logits, np.concatenate([tf_out["classifier00_logits"], tf_out["classifier01_logits"]], axis=1))
        big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 512 px: box-downsampled back to 256
        torch.testing.assert_close(C(big), logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="256 px"):
        C(images[:, :, :200, :200])


def test_attribute_names_from_file_names():
    assert attribute_from_file_name("celebahq-classifier-05-5-o-clock-shadow.pkl") == (5, "5_o_Clock_Shadow")
    assert attribute_from_file_name("x/celebahq-classifier-39-wearing-necktie.pkl") == (39, "Wearing_Necktie")
    assert attribute_from_file_name("celebahq-classifier-40-sunburn.pkl") == (40, "sunburn")
    with pytest.raises(CheckpointError, match="-<index>-<name>.pkl"):
        attribute_from_file_name("male.pkl")


# ---- nothing from the file runs -------------------------------------------------------------------------
def test_tensorflow_and_dnnlib_never_imported():
    """Load every fixture in a fresh interpreter that records any attempt to import tensorflow or dnnlib."""
    code = textwrap.dedent(f"""
        import sys
        attempts = []
        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "dnnlib", "tfutil"):
                    attempts.append(name)
                return None
        sys.meta_path.insert(0, Watch())
        from pathlib import Path
        from stylegan_core import load_discriminator, load_generator
        from stylegan_metrics.networks.classifier import load_classifier
        root = Path({str(FIXTURES)!r})
        for name in ("tf-stylegan1-32.pkl", "tf-stylegan2-32.pkl"):
            load_generator(root / name); load_discriminator(root / name)
        load_generator(root / "tf-stylegan1-g128.pkl"); load_discriminator(root / "tf-stylegan1-d256.pkl")
        load_classifier(root / "tf-classifiers")
        bad = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "dnnlib", "tfutil")]
        assert not attempts and not bad, (attempts, bad)
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.fixture
def tf_writer(monkeypatch):
    """pickle-writes TFNetwork-like records under NVIDIA's global name dnnlib.tflib.network.Network (test-only)."""
    module = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

        def __setstate__(self, state):
            raise AssertionError("the loader must never call NVIDIA's Network")

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    module.Network = Network
    for name, mod in (("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
                      ("dnnlib.tflib.network", module)):
        monkeypatch.setitem(sys.modules, name, mod)

    def record(net: TFNetwork, **changes):
        state = dict(version=net.version, name=net.name, static_kwargs=dict(net.static_kwargs),
                     components={k: record(c) for k, c in net.components.items()},
                     build_module_src=net.build_module_src, build_func_name=net.build_func_name,
                     variables=list(net.variables.items()))
        state.update(changes)
        return Network(state)

    return record


class SystemCall:
    """Unpickles as os.system(command): what a malicious pickle would do."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_round_trip_of_the_test_writer(tmp_path, tf_writer, tf_out):
    """The crafted files below differ from a loadable one only by what each test changes."""
    G, D, Gs = read_tf_pickle(STYLEGAN1)
    path = tmp_path / "copy.pkl"
    path.write_bytes(pickle.dumps((tf_writer(G), tf_writer(D), tf_writer(Gs)), protocol=4))
    G = load_generator(path)
    with torch.no_grad():
        images = G.synthesis(G.mapping(torch.from_numpy(tf_out["s1_z"]), None), noise_mode="const")
    assert_matches(images, tf_out["s1_images_psi1.0_cutoffNone"])


CRAFTED = {  # what changes in Gs -> the error
    "unknown build function": (lambda Gs, marker: dict(build_func_name="G_evil",
                                                       build_module_src="def G_evil(x):\n    pass\n"),
                               "'G_evil', which this reader does not know"),
    "source without the function": (lambda Gs, marker: dict(build_module_src="import os\n"), "defines no G_style()"),
    "kwarg naming a function": (lambda Gs, marker: dict(static_kwargs=dict(Gs.static_kwargs, act_func="os.system")),
                                "names a function"),
    "reduce to os.system": (lambda Gs, marker: dict(static_kwargs=dict(Gs.static_kwargs,
                                                                       truncation_psi=SystemCall(f"touch {marker}"))),
                            "it references posix.system|it references nt.system"),
    "object array": (lambda Gs, marker: dict(variables=[("lod", np.zeros([], np.float32)),
                                                        ("dlatent_avg", np.array([1] * 16, dtype=object))]), "dtype"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_pickles_refused_with_nothing_run(tmp_path, tf_writer, case):
    G, D, Gs = read_tf_pickle(STYLEGAN1)
    marker = tmp_path / "ran"
    change, message = CRAFTED[case]
    path = tmp_path / "crafted.pkl"
    path.write_bytes(pickle.dumps((tf_writer(G), tf_writer(D), tf_writer(Gs, **change(Gs, marker))), protocol=4))
    assert detect_source(path) == "tensorflow"
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)
    assert not marker.exists()


def test_unknown_synthesis_function_refused(tmp_path, tf_writer):
    G, D, Gs = read_tf_pickle(STYLEGAN2)
    path = tmp_path / "crafted.pkl"
    kwargs = dict(Gs.static_kwargs, synthesis_func="G_synthesis_stylegan_revised")
    path.write_bytes(pickle.dumps((tf_writer(G), tf_writer(D), tf_writer(Gs, static_kwargs=kwargs)), protocol=4))
    with pytest.raises(CheckpointError, match="synthesis_func='G_synthesis_stylegan_revised' is not supported"):
        load_generator(path)


def test_unsupported_hyper_parameter_refused(tmp_path, tf_writer):
    G, D, Gs = read_tf_pickle(STYLEGAN1)
    synthesis = Gs.components["synthesis"]
    bad = tf_writer(synthesis, static_kwargs=dict(synthesis.static_kwargs, use_instance_norm=False))
    crafted = tf_writer(Gs)
    crafted.state["components"]["synthesis"] = bad
    path = tmp_path / "crafted.pkl"
    path.write_bytes(pickle.dumps((tf_writer(G), tf_writer(D), crafted), protocol=4))
    with pytest.raises(CheckpointError, match="use_instance_norm=False is not supported"):
        load_generator(path)


# ---- our progressive StyleGAN1 synthesis and load_discriminator -----------------------------------------
def test_progressive_is_opt_in_and_equal_at_lod_0(tmp_path):
    torch.manual_seed(0)
    fixed = Generator(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16, mapping_layers=2)
    assert "progressive" not in fixed.config and not hasattr(fixed.synthesis, "lod")
    grown = Generator(**fixed.config, progressive=True)
    state = {k.replace("synthesis.to_rgb.", "synthesis.to_rgbs.2."): v for k, v in fixed.state_dict().items()}
    missing = grown.load_state_dict(state, strict=False).missing_keys
    new = [f"synthesis.to_rgbs.{k}.conv.{p}" for k in (0, 1) for p in ("bias", "weight")]
    assert sorted(missing) == ["synthesis.lod"] + new
    z = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(grown(z, noise_mode="const"), fixed(z, noise_mode="const"), rtol=0, atol=0)
        grown.synthesis.lod.fill_(2.0)  # 4x4 only, nearest-upsampled x4
        syn, ws = grown.synthesis, grown.mapping(z)
        x = syn.layers[1](syn.layers[0](syn.const.expand(3, -1, -1, -1), ws[:, 0], "const"), ws[:, 1], "const")
        img4 = syn.to_rgbs[0](x)
        torch.testing.assert_close(grown(z, noise_mode="const"), img4.repeat_interleave(4, 2).repeat_interleave(4, 3))
        grown.synthesis.lod.fill_(2.5)
        with pytest.raises(ValueError, match="lod must lie in"):
            grown(z)
    save_checkpoint(tmp_path / "g.pt", G=grown, G_ema=grown)
    loaded = load_generator(tmp_path / "g.pt")
    assert loaded.config["progressive"] and float(loaded.synthesis.lod) == 2.5
    with pytest.raises(ValueError, match="progressive applies to arch='stylegan' only"):
        Generator(z_dim=16, w_dim=16, img_resolution=16, arch="stylegan2", progressive=True)


@pytest.mark.parametrize("cls", [Discriminator, ResidualDiscriminator])
def test_load_discriminator_native(tmp_path, cls):
    torch.manual_seed(0)
    D = cls(img_resolution=16, channel_base=128, channel_max=16)
    save_checkpoint(tmp_path / "d.pt", config={"D": D.config}, D=D)
    loaded = load_discriminator(tmp_path / "d.pt")
    assert type(loaded) is cls and not loaded.training
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), D(x), rtol=0, atol=0)


def test_ls_runs_with_nvidias_classifier_folder(tmp_path):
    """`ls --classifier DIR`: NVIDIA's classifier pickles as one [N, K] classifier; 256-px images, as NVIDIA's."""
    import json

    from click.testing import CliRunner

    from stylegan_core import save_checkpoint
    from stylegan_metrics import linear_separability, load_classifier
    from stylegan_metrics_cli.main import main
    from helpers import tiny_generator

    G = tiny_generator(256, channel_base=64, channel_max=4)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    folder = FIXTURES / "tf-classifiers"
    out = tmp_path / "ls.jsonl"
    r = CliRunner().invoke(main, ["ls", "--ckpt", str(ckpt), "--classifier", str(folder), "--attributes", "2",
                                  "--num", "24", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    line = json.loads(out.read_text())
    alone = linear_separability(G, load_classifier(folder), num_samples=24, attributes=2, device="cpu",
                                progress=False)
    assert line["results"] == pytest.approx(alone.results, rel=1e-12)
    assert line["params"]["attributes"] == ["Male", "Smiling"]


@pytest.mark.parametrize("load,path", [(load_generator, STYLEGAN1), (load_discriminator, STYLEGAN1),
                                       (load_discriminator, STYLEGAN2)])
def test_networks_are_built_within_the_stored_weights_budget(monkeypatch, load, path):
    """Hyper-parameters are read from the file, so building from them is bounded by the stored weights' bytes (a
    crafted resolution would otherwise allocate noise buffers of gigabytes): with no budget, nothing is built."""
    import stylegan_core.limits as limits

    assert load(path) is not None
    monkeypatch.setattr(limits, "MAX_EXPANSION", 0)
    monkeypatch.setattr(limits, "SLACK_BYTES", 0)
    with pytest.raises(CheckpointError, match="unsupported hyper-parameters .*would take more than"):
        load(path)
