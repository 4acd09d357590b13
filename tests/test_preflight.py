"""What used to fail only after the trainings is tried before any work (issue #22 item 4):
a feature-map baseline's layer that the model lacks or that gives no (B, C, h, w) map, and
a sample selection that cannot be made, from `harsanyi check-config` and at the workflow's
start-up alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from harsanyi.cli import main
from harsanyi.config import load_study
from harsanyi.extraction import check_before_training
from harsanyi.games import FeatureMapMasker
from harsanyi.models import build_model

REPO = Path(__file__).resolve().parents[1]


def write_study(tmp_path: Path, layers: dict, **digits) -> Path:
    entry = {
        "architectures": sorted(layers),
        "players": {"grid": [4, 4], "n": 6},
        "baseline": {"type": "feature_map", "layers": layers},
        "max_train": 300,
        **digits,
    }
    path = tmp_path / "study.yaml"
    config = {"study": "pre", "results": str(tmp_path / "results"), "seeds": [0]}
    path.write_text(yaml.safe_dump({**config, "datasets": {"digits": entry}}))
    return path


def test_a_layer_the_model_has_and_that_gives_maps_passes(tmp_path):
    study = load_study(write_study(tmp_path, {"lenet": "features.1"}))
    assert check_before_training(study) == []


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"lenet": "features.9"}, "baseline.layers.lenet: model has no module named 'features.9'"),
        ({"lenet": "classifier.1"}, "baseline.layers.lenet: module 'classifier.1' must output"),
        (
            {"lenet": "features.1", "mlp": "layers.1"},
            "baseline.layers.mlp: module 'layers.1' must output (B, C, h, w) maps, got (1, 128)",
        ),
    ],
)
def test_a_layer_that_cannot_be_masked_names_its_key(tmp_path, layers, message):
    study = load_study(write_study(tmp_path, layers))
    with pytest.raises(ValueError) as error:
        check_before_training(study)
    assert str(error.value).startswith("datasets.digits.") and message in str(error.value)


def test_the_check_builds_nothing_but_meta_tensors():
    """The workflow builds the models of feature-map baselines at start-up: on the meta device, so
    a full-width VGG costs no memory and no arithmetic."""
    with torch.device("meta"):
        model = build_model("vgg11", (3, 32, 32), 10)
    assert all(p.device.type == "meta" for p in model.parameters())
    FeatureMapMasker.check_layer(model, "features.1", (3, 32, 32))
    with pytest.raises(ValueError, match="'spare' is not used by the model's forward pass"):
        FeatureMapMasker.check_layer(WithSpareModule(), "spare", (4,))


class WithSpareModule(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.spare = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_check_config_tries_the_selection_and_the_layers(tmp_path, capsys):
    bad_layer = write_study(tmp_path, {"lenet": "features.9"})
    assert main(["check-config", str(bad_layer)]) != 0
    assert "datasets.digits.baseline.layers.lenet" in capsys.readouterr().err
    too_many = write_study(tmp_path, {"lenet": "features.1"}, samples={"train_per_class": 500})
    assert main(["check-config", str(too_many)]) != 0
    assert "datasets.digits.samples.train_per_class: class 0 has" in capsys.readouterr().err
    # --no-data leaves the selection to the workflow (it needs the data)
    assert main(["check-config", "--no-data", str(too_many)]) == 0


def workflow_dry_run(config: Path) -> subprocess.CompletedProcess[str]:
    """`snakemake -n` of the study `config`, from the repository root as users run it."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_workflow_stops_at_start_up_on_a_layer_the_model_lacks(tmp_path):
    done = workflow_dry_run(write_study(tmp_path, {"lenet": "features.9"}))
    assert done.returncode != 0
    assert "config: datasets.digits.baseline.layers.lenet: model has no module named" in (
        done.stdout + done.stderr
    )


def test_no_flipped_samples_with_label_noise_is_refused_naming_the_key(tmp_path):
    """`samples.flipped: 0` in a study with label noise failed in `games` after the trainings
    (a noisy run explains its flipped samples); now the config is refused. Without noise, 0
    is fine."""
    from harsanyi.config import ConfigError

    path = write_study(tmp_path, {"lenet": "features.1"}, samples={"flipped": 0})
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "label_noise": [0.0, 0.2]}))
    with pytest.raises(
        ConfigError, match=r"datasets\.digits\.samples\.flipped: 0, but label_noise"
    ):
        load_study(path)
    path.write_text(yaml.safe_dump({**config, "label_noise": [0.0]}))
    assert load_study(path).datasets["digits"].samples["flipped"] == 0
