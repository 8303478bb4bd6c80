"""Where the 'generated' side of an evaluation comes from: a generator's samples by index (with labels for a
conditional one), or the images of a folder or zip given instead (`gen=`, `--gen`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

from stylegan_core.data.datasets import ImageDataset
from stylegan_core.errors import InputError

from stylegan_metrics.networks.resizing import resize_rule
from stylegan_metrics.stats import STATISTICS_SUFFIXES

from .context import Context
from .reference_images import dataset_batches, dataset_fingerprint, image_views, is_images
from .passes import SampleView
from .sampling import generate_batches, grouped


def generated_views(ctx: Context, truncation_psi: float, *, precision: str = "fp32") -> Callable[[int, int], object]:
    """(start, count) -> SampleViews of generated samples start..start+count-1 (latents, images, outputs); the
    generator runs in `precision`, and each view holds at least the options' `feature_batch_size` samples (None: one
    generator batch), the rows of every network call on it."""
    labels, o = ctx.conditioning()[0], ctx.options

    def batches(start: int, count: int):
        made = generate_batches(ctx.G, count, first=start, batch_size=o.batch_size, seed=o.seed, device=ctx.device,
                                truncation_psi=truncation_psi, uint8=False, labels=labels, precision=precision)
        for batch in grouped(made, o.feature_batch_size or o.batch_size):
            yield SampleView(batch)
    return batches


def generated_source(ctx: Context, truncation_psi: float, num: int, *, precision: str = "fp32",
                     names: list[str] = ()) -> tuple[Callable, dict]:
    """(views of samples by (start, count), the key that fixes them) for the metrics `names` of a 'generated' pass."""
    o = ctx.options
    if ctx.G is not None:
        key = {"generator": ctx.generator_fingerprint(), "seed": o.seed, "truncation_psi": truncation_psi,
               **ctx.conditioning()[1]}  # labels edited: new samples
        return generated_views(ctx, truncation_psi, precision=precision), key
    if gen_is_statistics(o.gen):
        raise InputError(f"generated-side statistics ({o.gen}) serve FID only; give images for {', '.join(names)}")
    dataset = generated_images(o.gen)
    if len(dataset) < num:
        raise InputError(f"{o.gen} holds {len(dataset):,} images, fewer than the {num:,} the metrics ask for "
                         f"(name a smaller count, e.g. fid{len(dataset)}_full)")
    batches = dataset_batches(dataset, batch_size=o.batch_size, workers=o.workers, device=ctx.device)
    return image_views(batches, ctx.device), {"gen": dataset_fingerprint(dataset)}


def generated_images(gen) -> ImageDataset:
    """A folder or zip of generated images, read by the rule of reference images (`open_images`): RGB, square,
    one size (never resized to match), 16-bit or float pixels scaled exactly or refused."""
    return ImageDataset(gen, channels=3, strict=True, labels=False)


def gen_is_statistics(gen) -> bool:
    return gen is not None and isinstance(gen, (str, Path)) and Path(gen).suffix.lower() in STATISTICS_SUFFIXES


def gen_count(gen) -> int:
    """How many generated images `gen` holds: a folder's or zip's images, a statistics file's n."""
    if gen_is_statistics(gen):
        from stylegan_metrics.edm2_stats import is_edm2_stats, read_edm2_stats
        from stylegan_metrics.stats import ReferenceStats

        n = next(iter(read_edm2_stats(gen).values())).n if is_edm2_stats(gen) else ReferenceStats.load(gen).n
        if n < 2:
            raise InputError(f"{gen} does not say how many images it summarises (no n): name the count, e.g. fid50k_full")
        return n
    return len(generated_images(gen))


def reference_resolution(ctx: Context) -> int:
    """The side of the reference images: a folder's or zip's, or what given statistics record (0: unknown)."""
    from stylegan_metrics.stats import ReferenceStats

    data = ctx.options.data
    try:
        if isinstance(data, ReferenceStats):
            return data.resolution
        if is_images(data):
            return ctx.reference.images(check_size=False).resolution
        if isinstance(data, (str, Path)) and Path(data).suffix.lower() == ".npz":  # EDM2's .pkl: unknown
            return ReferenceStats.load(data).resolution
    except InputError:
        pass  # the metrics that read the reference say what is wrong with it
    return 0


def warn_if_sizes_differ(ctx: Context, metrics: list) -> None:
    """One warning when generated images given as files are not the size of the reference images: the metrics
    that compare them still run (their feature networks resize every image), and the warning says how."""
    compared = {}  # network name -> metric names
    for m in metrics:
        if m.extractor is not None and m.reference_request() is not None:
            compared.setdefault(m.extractor.name, []).append(m.name)
    gen, data = ctx.options.gen, ctx.options.data
    if gen is None or not compared:
        return
    side = generated_images(gen).resolution
    ref = reference_resolution(ctx)
    if ref and side != ref:
        rules = "; ".join(f"{network} ({', '.join(names)}): {resize_rule(network)}"
                          for network, names in compared.items())
        where = data if isinstance(data, (str, Path)) or is_images(data) else type(data).__name__
        warnings.warn(f"generated images ({gen}) are {side}x{side} but the reference images ({where}) are "
                      f"{ref}x{ref}; the metrics still compare them, each network resizing every image: {rules}",
                      stacklevel=2)
