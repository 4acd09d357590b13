"""Architectures: forward shapes at the studies' input sizes, seeding, text embeddings,
pretrained weights and checkpoint round trips."""

import pytest
import torch
from torch import nn

from harsanyi.data import minilm_dir, minilm_tokenizer
from harsanyi.models import ARCHITECTURES, build_model, load_checkpoint, save_checkpoint

IMAGE_ARCHS = ["mlp", "lenet", "vgg11", "vgg13", "vgg16", "alexnet", "resnet18"]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def test_registry_names():
    assert set(ARCHITECTURES) == set(IMAGE_ARCHS) | {"bert_small", "minilm"}


@pytest.mark.parametrize("arch", IMAGE_ARCHS)
def test_image_models_give_finite_logits_at_study_sizes(arch):
    for shape in IMAGE_SHAPES:
        model = build_model(arch, shape, 10, seed=0).eval()
        with torch.no_grad():
            logits = model(torch.randn(2, *shape))
        assert logits.shape == (2, 10), (arch, shape)
        assert torch.isfinite(logits).all()
        assert not any(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_mlp_on_tabular_input_and_hidden_widths():
    model = build_model("mlp", (30,), 2, seed=0, hidden=(16, 8, 4))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (30, 16), (16, 8), (8, 4), (4, 2),
    ]  # fmt: skip
    assert model(torch.randn(3, 30)).shape == (3, 2)


def test_feature_maps_keep_torchvision_names():
    captured = {}
    model = build_model("vgg11", (3, 32, 32), 10, seed=0).eval()
    features = dict(model.named_modules())
    assert isinstance(features["features.3"], nn.Conv2d)
    features["features.4"].register_forward_hook(lambda m, i, o: captured.update(relu=o))
    features["features.3"].register_forward_hook(lambda m, i, o: captured.update(conv=o.clone()))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    # an in-place ReLU would have overwritten the convolution's output seen by its hook
    torch.testing.assert_close(captured["relu"], captured["conv"].clamp(min=0))
    assert (captured["conv"] < 0).any()
    resnet = dict(build_model("resnet18", (3, 32, 32), 10, seed=0).named_modules())
    assert resnet["conv1"].kernel_size == (3, 3) and isinstance(resnet["maxpool"], nn.Identity)
    assert {"layer1", "layer4", "fc"} <= set(resnet)
    lenet = dict(build_model("lenet", (1, 8, 8), 10, seed=0).named_modules())
    assert lenet["features.0"].in_channels == 1


def test_seeds_fix_the_weights_and_leave_the_global_rng_alone():
    for arch, shape in (("lenet", (1, 28, 28)), ("resnet18", (1, 8, 8)), ("bert_small", (16,))):
        torch.manual_seed(123)
        expected_draw = torch.rand(3)
        torch.manual_seed(123)
        a = build_model(arch, shape, 3, seed=7).state_dict()
        assert torch.equal(torch.rand(3), expected_draw)
        b = build_model(arch, shape, 3, seed=7).state_dict()
        c = build_model(arch, shape, 3, seed=8).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_bad_arch_and_shapes_are_named():
    with pytest.raises(ValueError, match="vit.*known.*resnet18"):
        build_model("vit", (3, 32, 32), 10)
    with pytest.raises(ValueError, match=r"\(30,\)"):
        build_model("lenet", (30,), 2)
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        build_model("bert_small", (1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"\(3, 2, 2\)"):
        build_model("vgg11", (3, 2, 2), 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", (30,), 1)


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def token_batch():
    tokenizer = minilm_tokenizer()
    encoded = tokenizer(
        ["the movie was not very good", "a dull plot"],
        padding="max_length",
        max_length=16,
        return_tensors="pt",
    )
    return encoded["input_ids"], encoded["attention_mask"]


@pytest.mark.parametrize("arch", ["bert_small", "minilm"])
def test_text_models_expose_embeddings(arch, token_batch):
    ids, mask = token_batch
    model = build_model(arch, (16,), 2, seed=0).eval()
    tokenizer = minilm_tokenizer()
    assert model.mask_token_id == tokenizer.mask_token_id
    assert model.pad_token_id == tokenizer.pad_token_id
    with torch.no_grad():
        logits = model(ids, mask)
        embeds = model.embed(ids)
        assert logits.shape == (2, 2) and torch.isfinite(logits).all()
        assert embeds.shape[:2] == (2, 16)
        torch.testing.assert_close(model.forward_embeds(embeds, mask), logits)
        # replacing one word's embedding by [MASK]'s changes the output
        masked = embeds.clone()
        masked[:, 3] = model.embed(torch.tensor([model.mask_token_id]))[0]
        assert not torch.allclose(model.forward_embeds(masked, mask), logits)
        # tokens outside the attention mask do not matter
        changed = ids.clone()
        changed[mask == 0] = tokenizer.mask_token_id
        torch.testing.assert_close(model(changed, mask), logits)


def test_minilm_carries_the_pretrained_weights():
    from safetensors.torch import load_file

    stored = load_file(str(minilm_dir() / "model.safetensors"))
    key = next(k for k in stored if k.endswith("embeddings.word_embeddings.weight"))
    model = build_model("minilm", (16,), 3, seed=0)
    torch.testing.assert_close(model.embed(torch.arange(stored[key].shape[0])), stored[key])
    layer = next(k for k in stored if k.endswith("encoder.layer.5.output.dense.weight"))
    torch.testing.assert_close(model.bert.bert.encoder.layer[5].output.dense.weight, stored[layer])


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path):
    model = build_model("lenet", (1, 8, 8), 10, seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    path = save_checkpoint(
        model, tmp_path / "ck" / "epoch1.pt", arch="lenet", input_shape=(1, 8, 8), num_classes=10
    )
    assert [p.name for p in path.parent.iterdir()] == ["epoch1.pt"]
    loaded = load_checkpoint(path, "lenet", (1, 8, 8), 10)
    assert not loaded.training
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    torch.testing.assert_close(load_checkpoint(bare, "lenet", (1, 8, 8), 10)(x), model(x))

    text = build_model("bert_small", (16,), 2, seed=1).eval()
    save_checkpoint(text, tmp_path / "bert.pt", arch="bert_small", input_shape=(16,), num_classes=2)
    ids = torch.randint(1000, 2000, (2, 16))
    reloaded = load_checkpoint(tmp_path / "bert.pt", "bert_small", (16,), 2)
    torch.testing.assert_close(reloaded(ids), text(ids))


def test_mismatched_checkpoints_name_the_file(tmp_path):
    path = tmp_path / "lenet10.pt"
    torch.save(build_model("lenet", (1, 8, 8), 10, seed=0).state_dict(), path)
    with pytest.raises(ValueError, match=r"lenet10\.pt.*classifier\.4\.weight"):
        load_checkpoint(path, "lenet", (1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"lenet10\.pt.*missing"):
        load_checkpoint(path, "mlp", (1, 8, 8), 10)
    tagged = save_checkpoint(
        build_model("mlp", (30,), 2), tmp_path / "mlp.pt", arch="mlp", input_shape=(30,),
        num_classes=2,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"mlp\.pt.*'mlp'"):
        load_checkpoint(tagged, "lenet", (1, 8, 8), 2)
    in_meta = tmp_path / "train_style.pt"
    torch.save({"state_dict": torch.load(path), "epoch": 1, "meta": {"arch": "lenet"}}, in_meta)
    assert isinstance(load_checkpoint(in_meta, "lenet", (1, 8, 8), 10), nn.Module)
    with pytest.raises(ValueError, match=r"train_style\.pt.*'lenet'"):
        load_checkpoint(in_meta, "mlp", (1, 8, 8), 10)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00 not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pt"):
        load_checkpoint(garbage, "lenet", (1, 8, 8), 10)
    with pytest.raises(FileNotFoundError, match=r"absent\.pt"):
        load_checkpoint(tmp_path / "absent.pt", "lenet", (1, 8, 8), 10)
