"""docs/architecture.md's example metrics (mean brightness, a Fréchet distance in a user's feature network) by name in
one `evaluate` call on a tiny generator; run alone or under torchrun. Rank 0 writes the results as JSON."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import architecture_example, tiny_generator  # noqa: E402

from stylegan_core import ranks  # noqa: E402
from stylegan_metrics import evaluate, register  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--data", required=True)
args = parser.parse_args()
example = architecture_example()
register(example.BRIGHTNESS)
register(example.EDGE_FD)
results = evaluate(tiny_generator(16, seed=3), ["brightness40", "edgefd40"], data=args.data, batch_size=4,
                   chunk_size=8, device="cpu", progress=False)
if ranks.is_main():
    Path(args.out).write_text(json.dumps({r.metric: r.value for r in results} |
                                         {"num_processes": results[0].params["num_processes"]}))
