"""The reference side of an evaluation: the reference images opened once, and what metrics compare against (feature
statistics or every feature row), served once per evaluation from the cache or from one pass over the images."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from dataclasses import dataclass

import numpy as np
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError, OutputError
from stylegan_core.files import check_writable

from stylegan_metrics.edm2_stats import edm2_block, is_edm2_stats
from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.networks.resizing import resize_rule
from stylegan_metrics.stats import FeatureStats, ReferenceStats

from .options import EvaluationOptions
from .passes import STATS_SHAPES, StatsPart, open_states, output_rows, run_pass
from .reductions import on_main, reduce_over_ranks
from .reference_cache import (features_cache_file, load_cached_features, metrics_home, save_features, stats_cache_file,
                              stats_of_rows)
from .reference_images import (ReferenceImages, check_resolution, dataset_batches, image_views, is_images,
                               open_images)

KINDS = ("stats", "features")


@dataclass(frozen=True)
class ReferenceRequest:
    """What a metric compares against, declared before any pass (`Metric.reference_request`), so that one pass over
    the reference images serves every metric of an evaluation."""

    kind: str                      # 'stats': float64 feature sums (FID); 'features': every row kept (KID, PR)
    extractor: FeatureExtractor    # the feature network
    output: int = 0                # which of its outputs ('stats': 0, the pool features)
    max_real: int | None = None    # the first this many reference images (None: all)
    folder: str | None = None      # state sub-folder of its part of the pass (--state-dir); None: named by the
                                   # request (kind, network, output, count), so no two requests share one

    def state_folder(self, count: int) -> str:
        if self.folder is not None:
            return self.folder
        network = re.sub(r"[^A-Za-z0-9_.-]", "_", self.extractor.name)
        return f"reference-{self.kind}-{network}-{self.output}-{count}"


class _Consumer:
    """One request's share of the reference pass: rows kept or sums, of images 0..num-1."""

    def __init__(
        self,
        request: ReferenceRequest,    # what it keeps: sums or rows, of which network output
        images: ReferenceImages,      # the images it reads (a head of the evaluation's reference images)
        folder: str,                  # its state sub-folder
    ):
        self.request, self.images, self.num, self.folder = request, images, len(images), folder

    def state_key(self) -> dict:
        r = self.request
        if r.kind == "stats":  # max_items as the version before the reference service keyed it: its states resume
            return {"run": "reference-stats", "data": self.images.fingerprint, "max_items": r.max_real,
                    "features": r.extractor.fingerprint}
        return {"run": "reference-features", "data": self.images.fingerprint, "features": r.extractor.fingerprint,
                "output": r.output}

    def shapes(self, count: int) -> dict[str, tuple]:
        return STATS_SHAPES if self.request.kind == "stats" else {"features": (count, -1)}

    def new_part(self):
        r = self.request
        return StatsPart(r.extractor) if r.kind == "stats" else output_rows(r.extractor, r.output)


def given_statistics(data, extractor: FeatureExtractor, *, resolution: int | None) -> ReferenceStats:
    """Statistics given as a .npz path or a ReferenceStats, checked against the feature network (its name and
    weights) and, where they record it, against the generator's resolution (None: no generator)."""
    if isinstance(data, ReferenceStats):
        stats = data.check()
    elif is_edm2_stats(data):
        stats = edm2_block(data, extractor.name)
    else:
        stats = ReferenceStats.load(data)
    where = str(data) if isinstance(data, (str, os.PathLike)) else "reference statistics"
    if stats.resolution and resolution is not None:  # statistics that record their images' size (not pytorch-fid's)
        check_resolution(where, stats.resolution, resolution)
    if stats.features != extractor.name:
        raise InputError(f"{where}: statistics of {stats.features!r} features, not {extractor.name!r}")
    if stats.fingerprint and stats.fingerprint != extractor.fingerprint:
        raise InputError(f"{where}: statistics computed with other {stats.features} weights ({stats.fingerprint}, "
                         f"now {extractor.fingerprint}); recompute them with these weights")
    return stats


class ReferenceService:
    """The reference data of one evaluation (`options.data`): images opened and fingerprinted once, statistics and
    features each computed once (memoised), from the cache under $STYLEGAN_METRICS_HOME/stats when it holds them."""

    def __init__(
        self,
        options: EvaluationOptions,   # the evaluation's: data, cache, batch size, workers, state folder, chunk size
        device: torch.device,         # where the feature networks run
        resolution: int | None,       # the generator's image side, which reference images must have (None: any)
    ):
        self.options, self.device, self.resolution = options, device, resolution
        self._images: ReferenceImages | None = None            # every reference image, opened once
        self._heads: dict[int | None, ReferenceImages] = {}    # the first max_items of them, fingerprinted once
        self._served: dict[tuple, object] = {}                 # request key -> statistics or rows

    @property
    def data(self):
        return self.options.data

    def images(self, max_items: int | None = None, *, check_size: bool = True) -> ReferenceImages:
        """The first `max_items` reference images (None: all); refused unless they are the generator's size."""
        if self.data is None or not is_images(self.data):
            raise InputError("this metric compares features of single images: the reference must be an image folder, "
                             "a zip or a dataset object (data=..., --data), not statistics")
        if self._images is None:
            self._images = open_images(self.data)
        if max_items not in self._heads:
            self._heads[max_items] = self._images.head(max_items)
        images = self._heads[max_items]
        if check_size:
            check_resolution(images.source, images.resolution, self.resolution)
        return images

    def stats(self, extractor: FeatureExtractor, max_real: int | None = None, *,
              folder: str | None = None) -> ReferenceStats:
        """Feature statistics of the reference: given (.npz, ReferenceStats) and checked, or of its images."""
        if self.data is None:
            raise InputError("this metric compares against real images: give the reference data (data=..., --data)")
        if not is_images(self.data):
            key = ("given", id(extractor))
            if key not in self._served:
                self._served[key] = given_statistics(self.data, extractor, resolution=self.resolution)
            return self._served[key]
        return self._serve([ReferenceRequest("stats", extractor, 0, max_real, folder)])[0]

    def features(self, extractor: FeatureExtractor, output: int = 0, max_real: int | None = None, *,
                 folder: str | None = None) -> np.ndarray | None:
        """Output `output` of `extractor` on the reference images, [N, D] float32 on the main rank (None elsewhere)."""
        return self._serve([ReferenceRequest("features", extractor, output, max_real, folder)])[0]

    def value(self, request: ReferenceRequest):
        """What `request` asks for: statistics (given, cached or computed) or rows (on the main rank)."""
        if request.kind == "stats":
            return self.stats(request.extractor, request.max_real, folder=request.folder)
        return self.features(request.extractor, request.output, request.max_real, folder=request.folder)

    def prefetch(self, requests: list[ReferenceRequest]) -> None:
        """Everything `requests` ask of reference images, in one pass (nothing for given statistics: the metrics
        read and check those themselves)."""
        if requests and self.data is not None and is_images(self.data):
            self._serve(requests)

    def _key(self, r: ReferenceRequest) -> tuple:
        return (r.kind, id(r.extractor), r.output, len(self.images(r.max_real)))

    def _serve(self, requests: list[ReferenceRequest]) -> list:
        """The value of each request: memoised, else cached, else derived from kept rows of the same network, else
        from one shared pass over the images."""
        for r in requests:
            if r.kind not in KINDS:
                raise ValueError(f"a reference request's kind is one of {', '.join(KINDS)}, not {r.kind!r}")
        todo: dict[tuple, ReferenceRequest] = {}
        for r in requests:
            key = self._key(r)
            if key not in self._served and key not in todo:
                found, value = self._cached(r)
                if found:
                    self._served[key] = value
                else:
                    todo[key] = r
        rows_of = {key: r for key, r in todo.items() if r.kind == "features"}
        derived = {key: r for key, r in todo.items() if r.kind == "stats" and self._rows_for(r, rows_of) is not None}
        passed = [r for key, r in todo.items() if key not in derived]
        if passed:
            self._pass(passed)
        for key, r in derived.items():
            self._served[key] = self._stats_from_rows(r, self._rows_for(r, rows_of))
        return [self._served[self._key(r)] for r in requests]

    def _rows_for(self, r: ReferenceRequest, pending: dict) -> tuple | None:
        """The key of kept rows of r's network output 0 covering r's images (served or about to be), or None."""
        n = len(self.images(r.max_real))
        keys = [k for k in list(self._served) + list(pending)
                if k[0] == "features" and k[1] == id(r.extractor) and k[2] == r.output == 0 and k[3] >= n]
        return min(keys, key=lambda k: k[3]) if keys else None

    def _stats_cache(self, r: ReferenceRequest):
        images = self.images(r.max_real)
        key = {"data": images.fingerprint, "max_items": r.max_real, "features": r.extractor.fingerprint}
        return stats_cache_file(images.stem, key) if self.options.cache else None

    def _features_cache(self, r: ReferenceRequest):
        return features_cache_file(self.images(r.max_real), r.extractor, r.output) if self.options.cache else None

    def _description(self, r: ReferenceRequest) -> dict:
        images = self.images(r.max_real)
        return {"resolution": images.resolution, "source": images.source, "resize": resize_rule(r.extractor.name)}

    def _cached(self, r: ReferenceRequest) -> tuple[bool, object]:
        """(True, value) when the cache holds r's value on every rank, else (False, None)."""
        if r.kind == "stats":
            path, value = self._stats_cache(r), None
            if path is not None and path.is_file():
                try:
                    value = ReferenceStats.load(path, require_digest=True)
                except InputError:
                    value = None  # damaged: computed again and replaced, never trusted
                if value is not None and not value.described():  # cached before statistics recorded their images
                    value = dataclasses.replace(value, **self._description(r))
            if not ranks.all_agree(value is not None):
                value = self._stats_of_cached_rows(r)
        else:
            value = load_cached_features(self._features_cache(r), len(self.images(r.max_real)))
        if not ranks.all_agree(value is not None):  # every rank, or none, uses it
            return False, None
        self._remove_stale_state(r)
        return True, value if r.kind == "stats" or ranks.is_main() else None

    def _stats_of_cached_rows(self, r: ReferenceRequest) -> ReferenceStats | None:
        """r's statistics summed from cached features of the same images and network (kept for KID by an earlier
        run), saved to the statistics cache; None unless every rank finds them."""
        images = self.images(r.max_real)
        rows = load_cached_features(self._features_cache(dataclasses.replace(r, output=0)), len(images))
        if not ranks.all_agree(rows is not None):
            return None
        value = self._summed(r, rows)
        on_main(lambda: value.save(self._stats_cache(r)))  # a failure reaches every rank, none waits
        return value

    def _summed(self, r: ReferenceRequest, rows: np.ndarray) -> ReferenceStats:
        """r's statistics summed from its images' feature rows: the numbers a one-process pass of its own would give
        (the same chunks, summed on the same device, merged in the same order)."""
        return ReferenceStats.from_accumulator(stats_of_rows(rows, self.options.chunk_size, self.device),
                                               r.extractor.name, r.extractor.fingerprint, **self._description(r))

    def _consumer(self, r: ReferenceRequest) -> _Consumer:
        images = self.images(r.max_real)
        return _Consumer(r, images, r.state_folder(len(images)))

    def _states(self, consumers: list[_Consumer]):
        return open_states(consumers, source_key={}, state_dir=self.options.state_path,
                           chunk_size=self.options.chunk_size)

    def _remove_stale_state(self, r: ReferenceRequest) -> None:
        """A crashed run's chunks of r are of no use once its value is known."""
        state_dir = self.options.state_path
        if state_dir is None:
            return
        folder = state_dir / r.state_folder(len(self.images(r.max_real)))
        if not ranks.all_agree(not folder.exists()):  # any rank sees it: every rank takes part (RunState syncs)
            self._states([self._consumer(r)])[0].remove()

    def _check_writable(self, r: ReferenceRequest) -> None:
        """Before the work, not after it: the cache file's place, checked by the main rank for every rank."""
        path = self._stats_cache(r) if r.kind == "stats" else self._features_cache(r)
        if path is None:
            return

        def check() -> None:
            try:
                check_writable(path)
            except OutputError as e:
                raise OutputError(f"{e}: the statistics cache lives under $STYLEGAN_METRICS_HOME ({metrics_home()}); "
                                  f"point it at a writable folder") from None
        on_main(check)

    def _pass(self, requests: list[ReferenceRequest]) -> None:
        """One pass over the largest set of images the requests read (each image through each network once)."""
        for r in requests:
            self._check_writable(r)
        consumers = [self._consumer(r) for r in requests]
        states = self._states(consumers)
        largest = max((c.images for c in consumers), key=len)
        o = self.options
        batches = dataset_batches(largest.dataset, batch_size=o.batch_size, workers=o.workers, device=self.device)
        chunks = run_pass(image_views(batches, self.device), consumers, states, chunk_size=o.chunk_size,
                          progress=o.progress, desc="reference")
        for i, r in enumerate(requests):
            if r.kind == "stats":
                total = reduce_over_ranks("sum", chunks[i])
                value = ReferenceStats.from_accumulator(FeatureStats.from_arrays(total), r.extractor.name,
                                                        r.extractor.fingerprint, **self._description(r))
                path, save = self._stats_cache(r), value.save
            else:
                gathered = reduce_over_ranks("chunks", chunks[i])
                value = np.concatenate([p["features"] for p in gathered.values()]) if ranks.is_main() else None
                path, save = self._features_cache(r), functools.partial(save_features, rows=value)
            if path is not None:  # by the main rank; a failure reaches every rank, and the cache is there for all
                on_main(functools.partial(save, path))
            self._served[self._key(r)] = value
        for state in states:
            if state is not None:
                state.remove()

    def _stats_from_rows(self, r: ReferenceRequest, key: tuple) -> ReferenceStats:
        """The statistics of r's images summed from kept rows of the same network output (`_summed`), computed and
        cached by the main rank (which holds the rows), on every rank."""
        def compute() -> ReferenceStats:
            value, path = self._summed(r, self._served[key][:len(self.images(r.max_real))]), self._stats_cache(r)
            if path is not None:
                value.save(path)
            return value
        value = on_main(compute)
        self._remove_stale_state(r)
        return value

