"""GPU-seconds asked per extracted sample, with the games and their decomposition in one job
(before: rule extract held the GPU through the LPs) and as two jobs (now: rule games holds
it for the forward passes only, rule extract decomposes on a CPU).

Run: python benchmarks/bench_split.py [--archs lenet vgg11 resnet18]

For each architecture (untrained, Fashion-MNIST-shaped inputs, n = 10 patches, the study's
default extraction: exact with both ends of the optimal face; 20 samples, one train and one
test per class), one thread: seconds per sample
of the masked forward passes (`checkpoint_games`) and of the decomposition (`decompose`),
measured side by side in this run.  A job holds its GPU for its whole run, so the GPU-seconds
asked per sample are games + decomposition before and games alone now; the ratio is printed.
On a GPU the forward passes are faster still (the GPU check), so the share of the
allocation the split frees is larger there than on this CPU.  `--json FILE` writes the rows
for the documentation (scripts/docs_numbers.py renders them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml
from records import write_table

from harsanyi.config import load_study
from harsanyi.extraction import checkpoint_games, decompose, select_samples
from harsanyi.models import build_model

SIZES = {"vgg11": {"width": 0.125}, "resnet18": {"width": 0.125}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["lenet", "vgg11", "resnet18"])
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    rows = []
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        entry = {
            "architectures": args.archs,
            "models": {a: SIZES[a] for a in args.archs if a in SIZES},
            "max_train": 500,
            "max_test": 200,
            "players": {"grid": [7, 7], "n": 10, "seed": 0},
            "baseline": {"type": "zero"},
            "samples": {"train_per_class": 1, "test_per_class": 1, "flipped": 0},
        }
        config = tmp / "study.yaml"
        config.write_text(yaml.safe_dump({"datasets": {"fashion_mnist": entry}}))
        study = load_study(config)
        plan = study.datasets["fashion_mnist"]
        manifest = tmp / "samples.json"
        select_samples(plan, plan.root, manifest)
        print(
            f"{'architecture':22s} {'samples':>7s} {'games s/sample':>14s} "
            f"{'decompose s/sample':>18s} {'GPU-s/sample before':>19s} {'now':>8s} "
            f"{'now/before':>10s}"
        )
        for run in study.runs:
            model = build_model(
                run.arch,
                plan.input_shape,
                plan.num_classes,
                seed=0,
                **run.settings.get("model", {}),
            )
            checkpoint = tmp / f"{run.name}.pt"
            torch.save({"state_dict": model.state_dict(), "meta": {"arch": run.arch}}, checkpoint)
            extraction = study.extraction_settings(run.dataset, run.arch)
            start = time.perf_counter()
            games = checkpoint_games(
                checkpoint,
                manifest,
                run.settings,
                extraction,
                plan.root,
                run=run.name,
                epoch=0,
                device="cpu",
                progress=False,
            )
            forward = time.perf_counter() - start
            count = games.n_samples
            start = time.perf_counter()
            decompose(games, tmp / f"{run.name}.h5", {**extraction, "face_ends": True})
            solve = time.perf_counter() - start
            before, now = (forward + solve) / count, forward / count
            label = run.arch + (
                f" w{run.settings['model']['width']:g}" if "model" in run.settings else ""
            )
            print(
                f"{label:22s} {count:7d} {forward / count:14.3f} {solve / count:18.3f} "
                f"{before:19.3f} {now:8.3f} {now / before:9.1%}"
            )
            rows.append(
                {
                    "arch": run.arch,
                    "width": run.settings.get("model", {}).get("width"),
                    "samples": count,
                    "games_s": forward / count,
                    "decompose_s": solve / count,
                }
            )
    if args.json:
        write_table(args.json, rows, n=10, face_ends=True)


if __name__ == "__main__":
    main()
