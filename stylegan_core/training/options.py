"""TrainingOptions: every value that defines a training run; saved in each snapshot and checked on resume."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stylegan_core.errors import InputError
from stylegan_core.networks.generator import ARCHITECTURES
from stylegan_core.training.progressive import LR_BASE, LR_PER_RES, MINIBATCH_BASE, MINIBATCH_PER_RES

# Options of progressive growing; they must keep their defaults when progressive is off.
PROGRESSIVE_FIELDS = ("lod_initial_resolution", "lod_training_kimg", "lod_transition_kimg", "minibatch_per_res",
                      "lr_per_res")


@dataclass
class TrainingOptions:
    """Everything that defines a run. Saved in each snapshot; a resumed run must match it."""

    resolution: int                   # Training resolution (images are resized to it).
    kimg: float = 1000.0              # Length of training in thousands of real images shown to D.
    batch: int | None = None          # Minibatch size; None = 32 (progressive: 4, NVIDIA's minibatch_base, at
                                      # resolutions minibatch_per_res does not list).
    lr: float | None = None           # Adam learning rate of G and D; None = 0.002 (progressive: 0.001, NVIDIA's
                                      # G_lrate_base, at resolutions lr_per_res does not list).
    betas: tuple = (0.0, 0.99)        # Adam betas.
    r1_gamma: float = 10.0            # R1 weight gamma: the penalty is gamma / 2 * ||grad D(x)||^2.
    r1_interval: int | None = None    # Lazy R1: apply every this many steps, scaled by the interval; None = 1 (stylegan) or 16 (stylegan2).
    style_mixing: float = 0.9         # Probability of a mixed-style batch.
    ema_kimg: float = 10.0            # EMA half-life in kimg: beta = 0.5 ** (batch / (ema_kimg * 1000)).
    ema_rampup: float | None = None   # If set, half-life min(ema_kimg, rampup * kimg seen) (stylegan2-ada).
    xflip: bool = False               # Also train on mirrored images.
    snap_kimg: float = 50.0           # Snapshot interval in kimg (a snapshot is also written at the end).
    seed: int = 0                     # Seeds initialisation, data order and every latent.
    z_dim: int = 512                  # Generator and discriminator shape ...
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int | None = None   # None = the arch default (16384 stylegan, 32768 stylegan2).
    channel_max: int = 512
    img_channels: int = 3
    arch: str = "stylegan"            # 'stylegan' (D then G step, R1 folded in) or 'stylegan2' (NVIDIA's phases, lazy regularization).
    pl_weight: float | None = None    # Path length regularization weight; None = 0 (stylegan) or 2 (stylegan2).
    pl_interval: int = 4              # Lazy path length regularization: every this many steps (stylegan2).
    pl_decay: float = 0.01            # Decay of the running mean path length.
    pl_batch_shrink: int = 2          # The path length batch is batch // pl_batch_shrink.
    tick_kimg: float = 4.0            # Status line and stats.jsonl record every this many kimg (NVIDIA's tick).
    progressive: bool = False         # Progressive growing (stylegan only): NVIDIA's schedule of the level of detail.
    lod_initial_resolution: int = 8   # Progressive: resolution trained first (NVIDIA's lod_initial_resolution).
    lod_training_kimg: float = 600.0  # Progressive: kimg at each resolution before the next fades in.
    lod_transition_kimg: float = 600.0  # Progressive: kimg of each fade-in.
    minibatch_per_res: dict | None = None  # Progressive: {resolution: minibatch}; None = NVIDIA's single-GPU table.
    lr_per_res: dict | None = None    # Progressive: {resolution: lr} of G and D; None = NVIDIA's G_lrate_dict.

    # Fields that may change when a run is resumed (they do not alter what has been computed).
    RESUMABLE_CHANGES = ("kimg", "snap_kimg", "tick_kimg")

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise InputError(f"unknown arch {self.arch!r}; available: {', '.join(sorted(ARCHITECTURES))}")
        stylegan2 = self.arch == "stylegan2"
        if self.channel_base is None:
            self.channel_base = ARCHITECTURES[self.arch][1]
        if self.r1_interval is None:
            self.r1_interval = 16 if stylegan2 else 1
        if self.pl_weight is None:
            self.pl_weight = 2.0 if stylegan2 else 0.0
        if self.pl_weight and not stylegan2:
            raise InputError("path length regularization (pl_weight) needs arch='stylegan2'")
        if self.pl_interval < 1 or self.pl_batch_shrink < 1:
            raise InputError("pl_interval and pl_batch_shrink must be >= 1")
        if not self.tick_kimg > 0:
            raise InputError(f"tick_kimg must be > 0, got {self.tick_kimg}")
        self._resolve_progressive()

    def _resolve_progressive(self) -> None:
        """Defaults of batch, lr and the per-resolution tables; InputError for progressive options without
        progressive, for stylegan2, and for a schedule that cannot run."""
        defaults = TrainingOptions.__dataclass_fields__
        if not self.progressive:
            changed = [name for name in PROGRESSIVE_FIELDS if getattr(self, name) != defaults[name].default]
            if changed:
                raise InputError(f"{', '.join(changed)} apply to progressive growing only "
                                 "(progressive=True, --progressive)")
            self.batch = 32 if self.batch is None else self.batch
            self.lr = 0.002 if self.lr is None else self.lr
            return
        if self.arch != "stylegan":
            raise InputError(f"progressive growing applies to arch='stylegan' only, not {self.arch!r} (NVIDIA trains "
                             "StyleGAN2 at a fixed resolution)")
        self.batch = MINIBATCH_BASE if self.batch is None else self.batch
        self.lr = LR_BASE if self.lr is None else self.lr
        self.minibatch_per_res = _table(MINIBATCH_PER_RES if self.minibatch_per_res is None else self.minibatch_per_res,
                                        int)
        self.lr_per_res = _table(LR_PER_RES if self.lr_per_res is None else self.lr_per_res, float)
        start = self.lod_initial_resolution
        if start < 4 or start & (start - 1) or start > self.resolution:
            raise InputError(f"lod_initial_resolution must be a power of two from 4 to the resolution "
                             f"{self.resolution}, got {start}")
        if not (self.lod_training_kimg >= 0 and self.lod_transition_kimg >= 0
                and self.lod_training_kimg + self.lod_transition_kimg > 0):
            raise InputError("lod_training_kimg and lod_transition_kimg must be >= 0 and not both 0 (the resolution "
                             f"would never grow), got {self.lod_training_kimg} and {self.lod_transition_kimg}")
        if any(v < 1 for v in self.minibatch_per_res.values()) or any(not v > 0 for v in self.lr_per_res.values()):
            raise InputError("minibatch_per_res and lr_per_res values must be positive")

    def generator_config(self) -> dict:
        return dict(
            z_dim=self.z_dim, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=self.img_channels,
            mapping_layers=self.mapping_layers, channel_base=self.channel_base, channel_max=self.channel_max,
            arch=self.arch, **({"progressive": True} if self.progressive else {}),
        )

    def discriminator_config(self) -> dict:
        return dict(
            img_resolution=self.resolution, img_channels=self.img_channels,
            channel_base=self.channel_base, channel_max=self.channel_max,
            **({"progressive": True} if self.progressive else {}),
        )

    def to_dict(self) -> dict:
        """Plain, JSON-safe values (per-resolution tables with string keys)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        for name in ("minibatch_per_res", "lr_per_res"):
            if d[name] is not None:
                d[name] = {str(res): value for res, value in sorted(d[name].items())}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["betas"] = tuple(kwargs.get("betas", (0.0, 0.99)))
        return cls(**kwargs)

    def check_resumable(self, saved: dict, where: str) -> None:
        """InputError naming every option that differs from the `saved` run's (except RESUMABLE_CHANGES)."""
        saved = TrainingOptions.from_dict(saved).to_dict()
        current = self.to_dict()
        diff = [k for k in current if k not in self.RESUMABLE_CHANGES and current[k] != saved[k]]
        if diff:
            detail = ", ".join(f"{k}: run has {saved[k]!r}, asked {current[k]!r}" for k in diff)
            raise InputError(f"cannot resume {where}: options differ ({detail})")


def _table(table: dict, kind: type) -> dict:
    """{resolution: value} with int keys (snapshots store them as strings) and `kind` values; InputError if
    malformed."""
    try:
        return {int(res): kind(value) for res, value in table.items()}
    except (TypeError, ValueError, AttributeError):
        raise InputError(f"a per-resolution table must map resolutions to numbers, got {table!r}") from None
