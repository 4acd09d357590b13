"""Architecture sizes in the config: a width multiplier for VGG, AlexNet and ResNet-18, depth
and width of the small BERT, hidden widths of the MLP; validated, named in the run, used by
training and extraction alike."""

from __future__ import annotations

import pytest
import torch
import yaml

from harsanyi.config import ConfigError, load_study
from harsanyi.models import build_model, load_checkpoint


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["vgg11", "alexnet", "resnet18"])
def test_a_width_multiplier_scales_every_convolution(arch):
    full = build_model(arch, (1, 28, 28), 10, seed=0)
    half = build_model(arch, (1, 28, 28), 10, seed=0, width=0.5)
    eighth = build_model(arch, (1, 28, 28), 10, seed=0, width=0.125)
    convs = [m.out_channels for m in full.modules() if isinstance(m, torch.nn.Conv2d)]
    scaled = [m.out_channels for m in eighth.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(scaled)
    assert scaled == [max(1, round(c / 8)) for c in convs]
    # parameters of convolutions scale with width², so each halving takes well over half away
    assert parameters(eighth) < parameters(half) / 2 < parameters(full) / 4
    out = eighth(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_width_one_is_the_standard_model():
    for arch in ("vgg11", "alexnet", "resnet18"):
        standard = build_model(arch, (1, 28, 28), 10, seed=0).state_dict()
        same = build_model(arch, (1, 28, 28), 10, seed=0, width=1.0).state_dict()
        assert list(standard) == list(same)
        for key in standard:
            torch.testing.assert_close(standard[key], same[key])


@pytest.mark.parametrize("width", [0, -1, 5, "wide", True])
def test_a_bad_width_is_named(width):
    with pytest.raises(ValueError, match="vgg11: width must be a number in"):
        build_model("vgg11", (1, 28, 28), 10, width=width)


def test_bert_small_depth_and_width():
    small = build_model("bert_small", (16,), 2, seed=0, hidden_size=32, num_layers=1, num_heads=2)
    large = build_model("bert_small", (16,), 2, seed=0, hidden_size=64, num_layers=3, num_heads=4)
    assert small.bert.config.num_hidden_layers == 1 and large.bert.config.num_hidden_layers == 3
    assert small.bert.config.intermediate_size == 128  # 4 × hidden_size
    assert parameters(small) < parameters(large)
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        build_model("bert_small", (16,), 2, hidden_size=30, num_heads=4)


def study(tmp_path, models: dict | None, architectures=("mlp", "vgg11")):
    entry = {"architectures": list(architectures), "players": {"grid": [8, 8], "n": 6}}
    if models is not None:
        entry["models"] = models
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"digits": entry}}))
    return load_study(path)


def test_sizes_in_the_config_name_the_run_and_standard_runs_keep_their_names(tmp_path):
    standard = study(tmp_path, None)
    sized = study(tmp_path, {"vgg11": {"width": 0.25}, "mlp": {"hidden": [32]}})
    names = {run.arch: run.name for run in standard.runs}
    assert all("model" not in run.settings for run in standard.runs)
    by_arch = {run.arch: run for run in sized.runs}
    assert by_arch["vgg11"].name.startswith("digits-vgg11w0.25-s0-")
    assert by_arch["vgg11"].settings["model"] == {"width": 0.25}
    assert by_arch["mlp"].settings["model"] == {"hidden": [32]}
    assert by_arch["mlp"].name != names["mlp"] and by_arch["vgg11"].name != names["vgg11"]
    unchanged = study(tmp_path, {"vgg11": {"width": 0.25}})
    assert {r.arch: r.name for r in unchanged.runs}["mlp"] == names["mlp"]


@pytest.mark.parametrize(
    "models, message",
    [
        ({"resnet18": {"width": 0.5}}, "models.resnet18: 'resnet18' is not among"),
        ({"vgg11": {"width": 0}}, "width"),
        ({"vgg11": {"depth": 3}}, "depth"),
        ({"lenet": {"width": 0.5}}, "lenet"),
    ],
)
def test_bad_sizes_are_named_before_anything_runs(tmp_path, models, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        study(tmp_path, models, architectures=("mlp", "vgg11", "lenet"))


def test_a_resized_checkpoint_loads_with_its_sizes_only(tmp_path):
    model = build_model("resnet18", (1, 28, 28), 10, seed=0, width=0.125)
    path = tmp_path / "epoch_0001.pt"
    torch.save({"state_dict": model.state_dict(), "meta": {"arch": "resnet18"}}, path)
    loaded = load_checkpoint(path, "resnet18", (1, 28, 28), 10, width=0.125)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    with pytest.raises(ValueError, match="does not fit resnet18"):
        load_checkpoint(path, "resnet18", (1, 28, 28), 10)


def test_the_cross_architecture_configs_resolve():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cross = load_study(repo / "config" / "cross_arch.yaml")
    archs = {(run.dataset, run.arch) for run in cross.runs}
    assert archs == {
        ("fashion_mnist", "mlp"),
        ("fashion_mnist", "lenet"),
        ("fashion_mnist", "vgg11"),
        ("fashion_mnist", "resnet18"),
        ("sentiment", "bert_small"),
    }
    assert len(cross.runs) == 20 and cross.joint["enabled"]
    groups = cross.joint_groups()  # the four image models of each seed and noise level
    assert len(groups) == 4 and all(len(runs) == 4 for runs in groups.values())
    assert cross.joint["samples_per_split"] == 3  # the whole LP is too costly here at n = 10
    gpu = load_study(repo / "config" / "gpu_study.yaml", check_data=False)
    assert all("model" not in run.settings for run in gpu.runs)  # full width
    assert {run.arch for run in gpu.runs} == {"vgg11", "resnet18", "alexnet"}
    assert gpu.joint["enabled"]
