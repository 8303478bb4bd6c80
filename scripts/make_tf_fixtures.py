"""Build the TensorFlow-pickle fixtures of tests/test_tf_pickle.py with NVIDIA's own TensorFlow code (one-off).

What it builds (small networks, every variable drawn from a seeded normal, written to --out):
- tf-stylegan1-32.pkl: a (G, D, Gs) tuple of NVlabs/stylegan's G_style (32 px, progressive: one ToRGB
  per resolution, fused up-convolutions forced on) and D_basic (32 px, fused down-convolutions);
- tf-stylegan1-g128.pkl: one G_style network at 128 px with NVIDIA's default fused_scale='auto' (plain
  up-convolutions below 128 px, fused at 128 px, as in the released FFHQ / CelebA-HQ generators);
- tf-stylegan1-d256.pkl: one D_basic at 256 px (fused down-convolutions at 256 and 128 px as 'auto' picks);
- tf-classifiers/celebahq-classifier-00-male.pkl (ProGAN's D_paper) and -01-smiling.pkl (D_basic
  with blur): 256 px, one logit, no minibatch stddev, pickled with numpy 1's module names (protocol 3);
- tf-stylegan2-32.pkl: a (G, D, Gs) tuple of NVlabs/stylegan2's G_main (G_synthesis_stylegan2, 'skip')
  and D_stylegan2 ('resnet'), 32 px, run with the reference (non-CUDA) upfirdn_2d / fused_bias_act;
- tf-outputs.npz: what TensorFlow computed (images at several truncations and levels of detail, dlatents,
  discriminator and classifier logits) and the inputs it was given.
The pickles are what tflib writes, except that the Python source each network records is replaced by a
stub defining its build function, so the fixtures hold no NVIDIA code (the loader never runs that source).

It imports NVIDIA's code unmodified from the checkouts given on the command line (NVlabs/stylegan for
dnnlib.tflib, training/networks_stylegan.py and training/networks_progan.py; NVlabs/stylegan2 for
training/networks_stylegan2.py), each in its own subprocess, after a small shim for TensorFlow 2:
`tf.compat.v1` in v1 graph mode stands in for `tensorflow`, the two tensorboard imports of
autosummary.py and stylegan2's `import tensorflow.contrib` are stubs, `get_variable` shapes turn bools
into ints, the CUDA-only ops fall back to their reference implementations, and the session allows soft
placement (no GPU). Measured with TensorFlow 2.21 (tensorflow-cpu) on Python 3.11.

Rerun (TensorFlow in an environment of its own, not the project's; any folders will do):
    python -m venv ~/tfvenv && ~/tfvenv/bin/pip install tensorflow-cpu
    git clone https://github.com/NVlabs/stylegan ../stylegan
    git clone https://github.com/NVlabs/stylegan2 ../stylegan2
    ~/tfvenv/bin/python scripts/make_tf_fixtures.py --stylegan ../stylegan --stylegan2 ../stylegan2
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

BATCH = 4
G1_KWARGS = dict(num_channels=3, resolution=32, label_size=0, latent_size=16, dlatent_size=16, mapping_fmaps=16,
                 fmap_base=64, fmap_max=16, fused_scale=True)
D1_KWARGS = dict(num_channels=3, resolution=32, label_size=0, fmap_base=64, fmap_max=16, fused_scale=True,
                 mbstd_group_size=4, mbstd_num_features=2)
G128_KWARGS = dict(num_channels=3, resolution=128, label_size=0, latent_size=8, dlatent_size=8, mapping_fmaps=8,
                   mapping_layers=2, fmap_base=64, fmap_max=16)
D256_KWARGS = dict(num_channels=3, resolution=256, label_size=0, fmap_base=128, fmap_max=8)
CLASSIFIER_KWARGS = dict(num_channels=3, resolution=256, label_size=0, fmap_base=128, fmap_max=8, mbstd_group_size=0)
G2_KWARGS = dict(num_channels=3, resolution=32, label_size=0, latent_size=16, dlatent_size=16, mapping_fmaps=16,
                 fmap_base=64, fmap_max=16)
D2_KWARGS = dict(num_channels=3, resolution=32, label_size=0, fmap_base=64, fmap_max=16)


def install_shim() -> None:
    """Let NVIDIA's TF1 code run unmodified on TensorFlow 2 (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    tf = tensorflow.compat.v1
    tf.disable_v2_behavior()
    sys.modules["tensorflow"] = tf
    tf.contrib = sys.modules["tensorflow.contrib"] = types.ModuleType("tensorflow.contrib")  # stylegan2's tfutil
    for name in ("tensorboard", "tensorboard.summary", "tensorboard.plugins", "tensorboard.plugins.custom_scalar",
                 "tensorboard.plugins.custom_scalar.layout_pb2"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["tensorboard"].summary = sys.modules["tensorboard.summary"]
    custom_scalar = sys.modules["tensorboard.plugins.custom_scalar"]
    custom_scalar.layout_pb2 = sys.modules["tensorboard.plugins.custom_scalar.layout_pb2"]
    get_variable = tf.get_variable

    def get_variable_int_shape(name, shape=None, *args, **kwargs):
        if shape is not None:
            shape = [int(s) if isinstance(s, bool) else s for s in shape]
        return get_variable(name, shape, *args, **kwargs)

    tf.get_variable = get_variable_int_shape


def randomize(net, seed: int) -> None:
    """Every variable of `net` (and its components) from a seeded normal, at scales that keep activations near 1."""
    import dnnlib.tflib as tflib

    rng = np.random.RandomState(seed)
    values = {}
    for name, var in net.vars.items():
        shape = [int(d) for d in var.shape]
        leaf = name.split("/")[-1]
        if leaf == "lod":
            value = np.zeros(shape)
        elif "Dense" in name and ("mapping" in name.lower()):
            value = rng.standard_normal(shape) * (100.0 if leaf == "weight" else 20.0)  # lrmul 0.01 stores / 0.01
        elif leaf in ("weight", "mod_weight", "const") or leaf.startswith("noise") and leaf[5:].isdigit():
            value = rng.standard_normal(shape)
        else:  # biases, noise strengths, dlatent_avg
            value = rng.standard_normal(shape) * 0.3
        values[var] = value.astype(np.float32)
    tflib.set_vars(values)


def images(seed: int, resolution: int) -> np.ndarray:
    return (np.random.RandomState(seed).standard_normal([BATCH, 3, resolution, resolution]) * 0.5).astype(np.float32)


def stub_sources(net) -> None:
    """Replace the module source each network records by a stub naming its build function (no NVIDIA code is
    stored in the fixtures; the loader under test never runs the source, it only checks the name is defined)."""
    net._build_module_src = (f"# NVIDIA's network source is not stored in this test fixture.\n"
                             f"def {net._build_func_name}(*args, **kwargs):\n    raise NotImplementedError\n")
    for component in net.components.values():
        stub_sources(component)


def save(obj, path: Path, protocol: int = 4, numpy1_names: bool = False) -> None:
    for net in obj if isinstance(obj, tuple) else (obj,):
        stub_sources(net)
    data = pickle.dumps(obj, protocol=protocol)
    if numpy1_names:  # protocol <= 3 spells globals as text lines: the names numpy 1 wrote
        assert protocol <= 3
        data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{path}: {len(data) / 1024:.0f} KiB")


def part_stylegan1(out: Path) -> dict:
    import dnnlib.tflib as tflib

    tflib.init_tf({"allow_soft_placement": True, "rnd.np_random_seed": 0, "rnd.tf_random_seed": 0})
    G = tflib.Network("G", func_name="training.networks_stylegan.G_style", **G1_KWARGS)
    D = tflib.Network("D", func_name="training.networks_stylegan.D_basic", **D1_KWARGS)
    Gs = G.clone("Gs")
    for net, seed in ((G, 1), (D, 2), (Gs, 3)):
        randomize(net, seed)
    z = np.random.RandomState(100).standard_normal([BATCH, G1_KWARGS["latent_size"]]).astype(np.float32)
    res = {"s1_z": z, "s1_dlatents": Gs.components.mapping.run(z, None)}
    for psi, cutoff in ((1.0, None), (0.7, 8), (0.5, 4)):
        res[f"s1_images_psi{psi}_cutoff{cutoff}"] = Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff,
                                                           randomize_noise=False)
    for lod in (1.0, 1.3, 2.6, 3.0):
        tflib.set_vars({Gs.find_var("lod"): np.float32(lod)})
        res[f"s1_images_lod{lod}"] = Gs.run(z, None, truncation_psi=1.0, randomize_noise=False)
    tflib.set_vars({Gs.find_var("lod"): np.float32(0)})
    res["s1_d_scores"] = D.run(res["s1_images_psi1.0_cutoffNone"], None)
    save((G, D, Gs), out / "tf-stylegan1-32.pkl")

    G128 = tflib.Network("G128", func_name="training.networks_stylegan.G_style", **G128_KWARGS)
    randomize(G128, 7)
    z = np.random.RandomState(102).standard_normal([2, G128_KWARGS["latent_size"]]).astype(np.float32)
    res["g128_z"] = z
    res["g128_images"] = G128.run(z, None, truncation_psi=1.0, randomize_noise=False)
    save(G128, out / "tf-stylegan1-g128.pkl")

    D256 = tflib.Network("D256", func_name="training.networks_stylegan.D_basic", **D256_KWARGS)
    randomize(D256, 4)
    res["d256_scores"] = D256.run(images(200, 256), None)
    save(D256, out / "tf-stylegan1-d256.pkl")

    for index, (name, func, seed) in enumerate((("male", "training.networks_progan.D_paper", 5),
                                                 ("smiling", "training.networks_stylegan.D_basic", 6))):
        C = tflib.Network(f"C{index}", func_name=func, **CLASSIFIER_KWARGS)
        randomize(C, seed)
        res[f"classifier{index:02d}_logits"] = C.run(images(300, 256), None)
        save(C, out / "tf-classifiers" / f"celebahq-classifier-{index:02d}-{name}.pkl", protocol=3, numpy1_names=True)
    return res


def part_stylegan2(out: Path) -> dict:
    import dnnlib.tflib as tflib
    from dnnlib.tflib.ops import fused_bias_act, upfirdn_2d

    fused_bias_act._fused_bias_act_cuda = fused_bias_act._fused_bias_act_ref  # no CUDA plugin on this machine
    upfirdn_2d._upfirdn_2d_cuda = upfirdn_2d._upfirdn_2d_ref
    tflib.init_tf({"allow_soft_placement": True, "rnd.np_random_seed": 0, "rnd.tf_random_seed": 0})
    G = tflib.Network("G", func_name="training.networks_stylegan2.G_main", **G2_KWARGS)
    D = tflib.Network("D", func_name="training.networks_stylegan2.D_stylegan2", **D2_KWARGS)
    Gs = G.clone("Gs")
    for net, seed in ((G, 11), (D, 12), (Gs, 13)):
        randomize(net, seed)
    z = np.random.RandomState(101).standard_normal([BATCH, G2_KWARGS["latent_size"]]).astype(np.float32)
    res = {"s2_z": z, "s2_dlatents": Gs.components.mapping.run(z, None)}
    for psi, cutoff in ((1.0, None), (0.5, None), (0.7, 4)):
        res[f"s2_images_psi{psi}_cutoff{cutoff}"] = Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff,
                                                           randomize_noise=False)
    res["s2_d_scores"] = D.run(res["s2_images_psi1.0_cutoffNone"], None)
    save((G, D, Gs), out / "tf-stylegan2-32.pkl")
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stylegan", type=Path, required=True, help="checkout of NVlabs/stylegan")
    parser.add_argument("--stylegan2", type=Path, required=True, help="checkout of NVlabs/stylegan2")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/tensorflow"))
    parser.add_argument("--part", choices=["stylegan1", "stylegan2"], help=argparse.SUPPRESS)  # one subprocess each
    args = parser.parse_args()
    out = args.out.resolve()
    if args.part:
        sys.path.insert(0, str((args.stylegan if args.part == "stylegan1" else args.stylegan2).resolve()))
        install_shim()
        res = part_stylegan1(out) if args.part == "stylegan1" else part_stylegan2(out)
        np.savez(out / f"tf-outputs-{args.part}.npz", **res)
        return
    results = {}
    for part in ("stylegan1", "stylegan2"):
        subprocess.run([sys.executable, __file__, "--stylegan", str(args.stylegan), "--stylegan2", str(args.stylegan2),
                        "--out", str(out), "--part", part], check=True)
        with np.load(out / f"tf-outputs-{part}.npz") as f:
            results.update({k: f[k] for k in f.files})
        (out / f"tf-outputs-{part}.npz").unlink()
    np.savez_compressed(out / "tf-outputs.npz", **results)
    print(f"{out / 'tf-outputs.npz'}: {', '.join(sorted(results))}")


if __name__ == "__main__":
    main()
