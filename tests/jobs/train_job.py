"""A tiny training run for the distributed test: every rank writes a hash of its networks and statistics."""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stylegan_core import TrainingOptions, ranks, train  # noqa: E402
from stylegan_core.training import trainer  # noqa: E402
from stylegan_core.training.trainer import Trainer  # noqa: E402


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--arch", default="stylegan")
    parser.add_argument("--kimg", type=float, default=0.048)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hide-snapshots", action="store_true", help="ranks > 0 cannot read the run folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = TrainingOptions(resolution=8, batch=8, kimg=args.kimg, snap_kimg=100, z_dim=16, w_dim=16, mapping_layers=2,
                              channel_base=128, channel_max=16, arch=args.arch, r1_interval=2, pl_interval=2)
    seen = {}
    original = Trainer.train

    def train_and_record(self, **kwargs):
        out = original(self, **kwargs)
        seen.update(G=digest(self.G), G_ema=digest(self.G_ema), D=digest(self.D), step=self.step,
                    images_seen=self.images_seen, pl_mean=float(self.pl_mean), batch_rows=self.last_rows)
        return out

    Trainer.train = train_and_record
    original_step = Trainer.train_step

    def step_and_count(self, real):
        self.last_rows = real.shape[0]
        return original_step(self, real)

    Trainer.train_step = step_and_count
    if args.hide_snapshots and ranks.launched_by_torchrun() and os.environ["RANK"] != "0":
        def unreadable(*_):
            raise AssertionError("this rank must not read snapshots itself")
        trainer.find_latest_snapshot = trainer.load_checkpoint = unreadable
    train(args.data, args.out_dir, options, resume=args.resume, progress=False)
    Path(args.out_dir, f"rank{ranks.rank()}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
