"""How far FID and PPL move when the feature / similarity network runs in bf16 instead of fp32 (on the CPU
here, with autocast), on the bundled toyfaces generator, `toyfaces` features and `toyfaces-lpips`.

    python benchmarks/precision_deviation.py [--num 2000] [--pairs 500]

PPL's public API has no precision option (see the README); this script calls its internals under bf16
autocast to show why.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch

from stylegan_core.data.toyfaces import ToyFaces
from stylegan_metrics import compute_reference_stats, fid, ppl
from stylegan_metrics.networks.registry import build_feature_extractor
from stylegan_metrics.precision import precision_context
from stylegan_metrics.networks.toyfaces_nets import load_toyfaces_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="generated and real images for FID")
    parser.add_argument("--pairs", type=int, default=500, help="PPL pairs")
    args = parser.parse_args()
    G, dev = load_toyfaces_generator(), torch.device("cpu")
    rows = []
    for precision in ("fp32", "bf16"):
        ext = build_feature_extractor("toyfaces", device=dev, precision=precision)
        ref = compute_reference_stats(ToyFaces(args.num, resolution=G.img_resolution), features=ext, device=dev,
                                      progress=False, cache=False)
        t0 = time.perf_counter()
        value = fid(G, ref, num_gen=args.num, features=ext, device=dev, progress=False).value
        seconds = time.perf_counter() - t0
        forced = lambda _, device_type, p=precision: precision_context(p, device_type)  # noqa: E731
        with mock.patch("stylegan_metrics.networks.registry.precision_context", forced):  # Similarity's fp32, overridden
            res = ppl(G, space="both", sampling="end", num_samples=args.pairs, similarity="toyfaces-lpips",
                      device=dev, progress=False).results
        res = {k.split("_")[1]: v for k, v in res.items()}  # 'ppl500_zend' -> 'zend': one column per variant
        rows.append((precision, value, seconds, res))
    print(f"| precision | FID ({args.num} vs {args.num}) | FID time s | PPL Z end | PPL W end |")
    print("|---|---|---|---|---|")
    for precision, value, seconds, res in rows:
        print(f"| {precision} | {value:.2f} | {seconds:.1f} | {res['zend']:.1f} | {res['wend']:.1f} |")
    base = rows[0]
    print(f"\nbf16 vs fp32: FID {abs(rows[1][1] - base[1]) / base[1]:.2%}, time {rows[1][2] / base[2]:.1f}x, "
          f"PPL Z end {rows[1][3]['zend'] / base[3]['zend']:.0f}x, PPL W end {rows[1][3]['wend'] / base[3]['wend']:.0f}x")


if __name__ == "__main__":
    main()
