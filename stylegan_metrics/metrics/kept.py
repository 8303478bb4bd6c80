"""Metrics that keep every feature vector (KID, precision/recall, IS): generated features kept per chunk, reference
features computed once per dataset and network, cached as .npy and memory-mapped."""

from __future__ import annotations

import numpy as np

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_core.files import check_writable

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric
from stylegan_metrics.engine.passes import RowsPart, open_states, run_pass
from stylegan_metrics.engine.state import Payload
from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.engine.reference_images import dataset_batches, image_views, is_images, open_images
from stylegan_metrics.reference import features_cache_file, load_cached_features, save_features


def kept_part(extractor: FeatureExtractor, output: int) -> RowsPart:
    """A chunk's features: output `output` of the extractor, float32 [count, D] (one network call per batch)."""
    def rows_of(view) -> Payload:
        outputs = view.output(extractor.fingerprint, extractor.outputs)
        if output >= len(outputs):
            raise InputError(f"feature network {extractor.name!r} has no output {output} (it gives "
                             f"{len(outputs)}): this metric needs class logits, as inception-v3 gives")
        return {"features": outputs[output].float()}  # [B, D] on the network's device
    return RowsPart(rows_of)


class KeptConsumer:
    """Keeps output `output` of `extractor` for images 0..num-1 (the reference side's consumer)."""

    def __init__(self, extractor: FeatureExtractor, output: int, num: int, folder: str):
        self.extractor, self.output, self.num, self.folder = extractor, output, num, folder

    def state_key(self) -> dict:
        return {"features": self.extractor.fingerprint, "output": self.output}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {"features": (count, -1)}

    def new_part(self) -> RowsPart:
        return kept_part(self.extractor, self.output)


def all_rows(chunks: dict[int, Payload], key: str = "features") -> np.ndarray | None:
    """Every rank's chunk arrays concatenated in index order, on rank 0 (None elsewhere)."""
    chunks = ranks.gather_chunks_to_main(chunks)
    return np.concatenate([chunks[c][key] for c in sorted(chunks)]) if ranks.is_main() else None


def reference_features(ctx: Context, extractor: FeatureExtractor, output: int, max_real: int | None,
                       folder: str) -> np.ndarray | None:
    """Output `output` of `extractor` on the reference images (the first `max_real`, or all), [N, D] float32 on
    rank 0 (None elsewhere); cached under $STYLEGAN_METRICS_HOME/stats as .npy and memory-mapped when read."""
    data = ctx.data
    if data is None or not is_images(data):
        raise InputError("this metric compares features of single images: the reference must be an image folder, "
                         "a zip or a dataset object (data=..., --data), not statistics")
    images = open_images(data, max_items=max_real, resolution=ctx.G.img_resolution if ctx.G is not None else None)
    cache = features_cache_file(images, extractor, output)
    cached = load_cached_features(cache, len(images))
    if ranks.all_agree(cached is not None):  # every rank, or none, uses it
        return cached if ranks.is_main() else None
    if ranks.is_main():
        check_writable(cache)  # before the work, not after it
    key = {"data": images.fingerprint, "num": len(images), "features": extractor.fingerprint, "output": output}
    consumer = KeptConsumer(extractor, output, len(images), folder="")
    state_dir = ctx.state_dir / f"{folder}-reference" if ctx.state_dir else None
    states = open_states([consumer], source_key={"run": "reference-features", **key}, state_dir=state_dir,
                         chunk_size=ctx.chunk_size)
    batches = dataset_batches(images.dataset, batch_size=ctx.batch_size, workers=ctx.workers, device=ctx.device)
    chunks = run_pass(image_views(batches, ctx.device), [consumer], states, chunk_size=ctx.chunk_size,
                      progress=ctx.progress, desc="reference features")[0]
    rows = all_rows(chunks)
    if ranks.is_main():
        save_features(cache, rows)
    ranks.barrier()  # the cache is there for every rank (FID of the same images reads it next)
    if states[0] is not None:
        states[0].remove()
    return rows


class KeptFeatures(Metric):
    """Base of the metrics that keep features: generated features of output `output` of the network `network`
    (None: the evaluation's feature network) per chunk; with `max_real` set, reference features too."""

    network: str | None = None   # the registry name of the feature network; None: ctx.features
    output: int = 0              # which output of the network (inception-v3: 0 pool features, 1 logits)
    uses_reference: bool = True
    reference_order = -1         # reference features first: FID of the same images then sums them, no second pass

    def __init__(self, name: str, *, num: int, max_real: int | None = None, truncation_psi: float = 1.0):
        self.name, self.num, self.max_real, self.truncation_psi = name, num, max_real, truncation_psi

    def prepare(self, ctx: Context) -> None:
        self.extractor = ctx.feature_extractor(self.network)
        self.device, self.seed = ctx.device, ctx.seed

    def prepare_reference(self, ctx: Context) -> None:
        self.real = reference_features(ctx, self.extractor, self.output, self.max_real, self.folder) \
            if self.uses_reference else None

    def state_key(self) -> dict:
        return {"metric": type(self).__name__, "features": self.extractor.fingerprint, "output": self.output}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {"features": (count, -1)}

    def new_part(self) -> RowsPart:
        return kept_part(self.extractor, self.output)

    def finish(self, chunks: dict[int, Payload]):
        gen = all_rows(chunks)
        results = self.compute(gen, self.real) if ranks.is_main() else None  # once, on rank 0
        return ranks.broadcast_from_main(results), None

    def compute(self, gen: np.ndarray, real: np.ndarray | None) -> dict[str, float]:
        raise NotImplementedError

    def params(self) -> dict:
        return dict(num_gen=self.num, max_real=self.max_real, truncation_psi=self.truncation_psi,
                    features=self.extractor.name, features_fingerprint=self.extractor.fingerprint,
                    precision=self.extractor.precision,
                    reference_n=None if self.real is None else int(self.real.shape[0]))
