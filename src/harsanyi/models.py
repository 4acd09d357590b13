"""Model architectures by name; all return plain logits (B, num_classes).

Image models keep torchvision's module names ("features.3", "layer2", "fc") so feature-map
hooks address the same layers as in the stock networks; small inputs are adapted (upsampled
to 32×32, first convolution built for the channel count, CIFAR-style stems and heads).
All ReLUs are out of place, so a hook's view of a feature map is not overwritten later.
Text models take token ids and also expose their word embeddings (`embed`,
`forward_embeds`), so that tokens can be masked by replacing their embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harsanyi.data import minilm_dir, minilm_tokenizer
from harsanyi.io import save_torch

SMALL_SIDE = 32  # image inputs smaller than this are upsampled to it


# --------------------------------------------------------------------------- helpers


def _image_shape(arch: str, input_shape: tuple[int, ...], min_side: int) -> tuple[int, int, int]:
    if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
        raise ValueError(f"{arch} needs an image input shape (C, H, W), got {input_shape}")
    c, h, w = (int(s) for s in input_shape)
    if min(h, w) < min_side:
        raise ValueError(
            f"{arch} needs images of at least {min_side}×{min_side}, got {input_shape}"
        )
    return c, h, w


def _input_adapter(h: int, w: int) -> nn.Module:
    if min(h, w) >= SMALL_SIDE:
        return nn.Identity()
    size = (max(h, SMALL_SIDE), max(w, SMALL_SIDE))
    return nn.Upsample(size=size, mode="bilinear", align_corners=False)


def _relu_out_of_place(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return model


def _small_head(in_features: int, num_classes: int, hidden: int = 512) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


# --------------------------------------------------------------------------- MLP, LeNet


class MLP(nn.Module):
    """Flatten → [Linear → ReLU] per hidden width → Linear."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int]) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _build_mlp(
    input_shape: tuple[int, ...], num_classes: int, *, hidden: Sequence[int] = (128, 128)
) -> nn.Module:
    if len(input_shape) not in (1, 3) or any(int(s) < 1 for s in input_shape):
        raise ValueError(f"mlp needs an input shape (F,) or (C, H, W), got {input_shape}")
    if any(int(h) < 1 for h in hidden):
        raise ValueError(f"mlp hidden widths must be positive, got {list(hidden)}")
    in_features = 1
    for s in input_shape:
        in_features *= int(s)
    return MLP(in_features, num_classes, [int(h) for h in hidden])


class LeNet(nn.Module):
    """LeNet-5 style: two 5×5 'same' convolutions with ReLU and 2×2 max pooling, then
    120 → 84 → classes; 'same' padding lets it take 8×8 as well as 28×28 and 32×32 inputs."""

    def __init__(self, in_channels: int, height: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = 16 * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def _build_lenet(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    c, h, w = _image_shape("lenet", input_shape, min_side=4)
    return LeNet(c, h, w, num_classes)


# --------------------------------------------------------------------------- torchvision


class ConvClassifier(nn.Module):
    """VGG / AlexNet layout (features → avgpool → flatten → classifier) behind an input adapter."""

    def __init__(
        self,
        input_adapter: nn.Module,
        features: nn.Module,
        avgpool: nn.Module,
        classifier: nn.Module,
    ) -> None:
        super().__init__()
        self.input_adapter = input_adapter
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(self.input_adapter(x)))
        return self.classifier(torch.flatten(x, 1))


def _first_conv_for(conv: nn.Conv2d, in_channels: int, **changes: Any) -> nn.Conv2d:
    """`conv` rebuilt for `in_channels` (and any changed settings), He-initialised."""
    settings = {
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "bias": conv.bias is not None,
    }
    settings.update(changes)
    new = nn.Conv2d(in_channels, conv.out_channels, **settings)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _vgg_init(model: nn.Module) -> None:
    """torchvision's VGG initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _scaled(channels: int, width: float) -> int:
    """A layer's channel count under the width multiplier `width` (at least 1)."""
    return max(1, int(round(channels * width)))


def _check_width(arch: str, width: float) -> float:
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not 0 < width <= 4:
        raise ValueError(f"{arch}: width must be a number in (0, 4], got {width!r}")
    return float(width)


def _build_vgg(
    depth: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    small_head: bool | None = None,
    width: float = 1.0,
) -> nn.Module:
    """torchvision VGG; below 224 px (or small_head=True) a 512 → 512 → classes head after
    global average pooling replaces the 25088 → 4096 → 4096 one.  `width` multiplies every
    convolution's channels (and the small head's), e.g. 0.25 for a CPU study; 1 is VGG."""
    from torchvision import models
    from torchvision.models.vgg import cfgs, make_layers

    arch = f"vgg{depth}"
    c, h, w = _image_shape(arch, input_shape, min_side=8)
    width = _check_width(arch, width)
    if small_head is None:
        small_head = min(h, w) < 224 or width != 1.0
    if small_head:
        # torchvision's own layer list, without building (and initialising) the 120M-weight head
        layers = [
            item if item == "M" else _scaled(item, width)
            for item in cfgs[{11: "A", 13: "B", 16: "D"}[depth]]
        ]
        features = make_layers(layers)
        avgpool = nn.AdaptiveAvgPool2d(1)
        classifier = _small_head(_scaled(512, width), num_classes, _scaled(512, width))
    else:
        stock = getattr(models, arch)(weights=None, num_classes=num_classes)
        features, avgpool, classifier = stock.features, stock.avgpool, stock.classifier
    if c != 3:
        features[0] = _first_conv_for(features[0], c)
    model = ConvClassifier(_input_adapter(h, w), features, avgpool, classifier)
    if small_head:
        _vgg_init(model)
    return _relu_out_of_place(model)


def _build_alexnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    small_head: bool | None = None,
    width: float = 1.0,
) -> nn.Module:
    """torchvision AlexNet; below 64 px its 11×11 stride-4 stem leaves nothing to pool, so a
    3×3 stride-1 stem and a 256 → 512 → classes head (after global pooling) replace them.
    `width` multiplies every convolution's channels (and the small head's)."""
    from torchvision import models

    c, h, w = _image_shape("alexnet", input_shape, min_side=8)
    width = _check_width("alexnet", width)
    stock = models.alexnet(weights=None, num_classes=num_classes)
    features = stock.features
    small = min(max(h, SMALL_SIDE), max(w, SMALL_SIDE)) < 64
    if width != 1.0:
        channels = c
        for index, layer in enumerate(features):
            if isinstance(layer, nn.Conv2d):
                out = _scaled(layer.out_channels, width)
                scaled = nn.Conv2d(channels, out, layer.kernel_size, layer.stride, layer.padding)
                features[index], channels = scaled, out
    if small:
        features[0] = _first_conv_for(features[0], c, kernel_size=3, stride=1, padding=1)
    elif c != 3:
        features[0] = _first_conv_for(features[0], c)
    if small_head is None:
        small_head = small or width != 1.0
    if small_head:
        last = _scaled(256, width)
        avgpool = nn.AdaptiveAvgPool2d(1)
        classifier = _small_head(last, num_classes, _scaled(512, width))
    else:
        avgpool, classifier = stock.avgpool, stock.classifier
    model = ConvClassifier(_input_adapter(h, w), features, avgpool, classifier)
    return _relu_out_of_place(model)


class ResNetClassifier(nn.Module):
    """torchvision ResNet's modules (conv1 … layer4, avgpool, fc) behind an input adapter."""

    def __init__(self, input_adapter: nn.Module, stock: nn.Module) -> None:
        super().__init__()
        self.input_adapter = input_adapter
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(stock, name))
        self.avgpool = stock.avgpool
        self.fc = stock.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.input_adapter(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _build_resnet18(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    small_stem: bool | None = None,
    width: float = 1.0,
) -> nn.Module:
    """torchvision ResNet-18; at most 64 px (or small_stem=True) a 3×3 stride-1 stem without
    max pooling, as for CIFAR, replaces the 7×7 stride-2 stem.  `width` multiplies the
    channels of every stage (64, 128, 256, 512 at 1), built with torchvision's own blocks."""
    from torchvision import models
    from torchvision.models.resnet import BasicBlock

    c, h, w = _image_shape("resnet18", input_shape, min_side=8)
    width = _check_width("resnet18", width)
    stock = models.resnet18(weights=None, num_classes=num_classes)
    if width != 1.0:
        stem = _scaled(64, width)
        stock.inplanes = stem
        stock.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        stock.bn1 = nn.BatchNorm2d(stem)
        for index, channels in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if index == 1 else 2
            layer = stock._make_layer(BasicBlock, _scaled(channels, width), 2, stride=stride)
            setattr(stock, f"layer{index}", layer)
        stock.fc = nn.Linear(_scaled(512, width), num_classes)
        for module in stock.modules():  # torchvision's ResNet initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
    if small_stem is None:
        small_stem = min(h, w) <= 64
    if small_stem:
        stock.conv1 = _first_conv_for(stock.conv1, c, kernel_size=3, stride=1, padding=1)
        stock.maxpool = nn.Identity()
    elif c != 3:
        stock.conv1 = _first_conv_for(stock.conv1, c)
    return _relu_out_of_place(ResNetClassifier(_input_adapter(h, w), stock))


# --------------------------------------------------------------------------- text


class TextClassifier(nn.Module):
    """A BertForSequenceClassification that returns logits and exposes its word embeddings."""

    def __init__(self, bert: nn.Module, mask_token_id: int, pad_token_id: int) -> None:
        super().__init__()
        self.bert = bert
        self.mask_token_id = int(mask_token_id)
        self.pad_token_id = int(pad_token_id)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings (B, L, d), before position and token-type embeddings are added."""
        return self.bert.get_input_embeddings()(input_ids)

    def forward_embeds(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.bert(inputs_embeds=embeds, attention_mask=attention_mask).logits


def _text_length(arch: str, input_shape: tuple[int, ...], max_positions: int) -> int:
    if len(input_shape) != 1 or not 3 <= int(input_shape[0]) <= max_positions:
        raise ValueError(
            f"{arch} needs a text input shape (L,) with 3 <= L <= {max_positions}, "
            f"got {input_shape}"
        )
    return int(input_shape[0])


def _build_bert_small(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    dropout: float = 0.1,
) -> nn.Module:
    """A small BERT trained from scratch, with the MiniLM tokenizer's vocabulary: `num_layers`
    encoder layers of `hidden_size` (a multiple of `num_heads`), feed-forward
    `intermediate_size` (None: 4 × hidden_size)."""
    from transformers import BertConfig, BertForSequenceClassification

    length = _text_length("bert_small", input_shape, max_positions=512)
    for name, value in (
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"bert_small: {name} must be a positive integer, got {value!r}")
    if hidden_size % num_heads:
        raise ValueError(
            f"bert_small: hidden_size {hidden_size} is not a multiple of num_heads {num_heads}"
        )
    intermediate_size = 4 * hidden_size if intermediate_size is None else intermediate_size
    tokenizer = minilm_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=max(length, 64),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=num_classes,
    )
    bert = BertForSequenceClassification(config)
    return TextClassifier(bert, tokenizer.mask_token_id, tokenizer.pad_token_id)


def _build_minilm(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The bundled pretrained all-MiniLM-L6-v2 encoder with a fresh classification head."""
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    _text_length("minilm", input_shape, max_positions=512)
    tokenizer = minilm_tokenizer()
    verbosity, progress = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "newly initialised head" warning is expected
    hf_logging.disable_progress_bar()
    try:
        bert = BertForSequenceClassification.from_pretrained(
            str(minilm_dir()),
            num_labels=num_classes,
            local_files_only=True,
            dtype=torch.float32,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress:
            hf_logging.enable_progress_bar()
    return TextClassifier(bert, tokenizer.mask_token_id, tokenizer.pad_token_id)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Architecture:
    """A model family: its builder `build(input_shape, num_classes, **options)` and the
    input kinds ("image", "tabular", "text") it takes."""

    build: Callable[..., nn.Module]
    kinds: frozenset[str]


IMAGE = frozenset({"image"})
TEXT = frozenset({"text"})

# The registry of architectures: the config schema's architecture names must equal its keys
# (tests/test_config.py checks).
ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(_build_mlp, frozenset({"image", "tabular"})),
    "lenet": Architecture(_build_lenet, IMAGE),
    "vgg11": Architecture(lambda shape, classes, **kw: _build_vgg(11, shape, classes, **kw), IMAGE),
    "vgg13": Architecture(lambda shape, classes, **kw: _build_vgg(13, shape, classes, **kw), IMAGE),
    "vgg16": Architecture(lambda shape, classes, **kw: _build_vgg(16, shape, classes, **kw), IMAGE),
    "alexnet": Architecture(_build_alexnet, IMAGE),
    "resnet18": Architecture(_build_resnet18, IMAGE),
    "bert_small": Architecture(_build_bert_small, TEXT),
    "minilm": Architecture(_build_minilm, TEXT),
}


def architectures_for(kind: str) -> list[str]:
    """The architectures that take inputs of `kind`, sorted."""
    return sorted(name for name, arch in ARCHITECTURES.items() if kind in arch.kinds)


def build_model(
    arch: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """A freshly initialised model; with `seed` its weights depend only on the seed (the global
    random state is left untouched)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    input_shape = tuple(int(s) for s in input_shape)
    if seed is None:
        return ARCHITECTURES[arch].build(input_shape, num_classes, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[arch].build(input_shape, num_classes, **options)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    arch: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    **metadata: Any,
) -> Path:
    """Write {"state_dict", "arch", "input_shape", "num_classes", **metadata} atomically."""
    payload = {
        "state_dict": model.state_dict(),
        "arch": arch,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        **metadata,
    }
    return save_torch(payload, path)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read safely; the message names the file."""


def read_checkpoint(path: str | Path) -> Any:
    """The content of a checkpoint file, loaded weights-only.

    Checkpoints may come from a shared store that anyone can write to, and a full pickle
    runs whatever code the file names.  `torch.load(weights_only=True)` unpickles tensors
    and plain containers only; anything else (a crafted file, a truncated one) raises
    CheckpointError naming `path`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad or crafted files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused or unreadable checkpoint (weights-only load): {first_line}"
        ) from None


def _state_dict_of(content: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = content["state_dict"]
    if not isinstance(content, dict) or not all(
        isinstance(v, torch.Tensor) for v in content.values()
    ):
        raise ValueError(f"{path}: not a state dict (nor a dict with a 'state_dict' entry)")
    return content


def load_checkpoint(
    path: str | Path,
    arch: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    **options: Any,
) -> nn.Module:
    """The model `arch` with the weights of `path` (a state dict, or a save_checkpoint file),
    in eval mode; a state dict that does not fit raises a ValueError naming the file."""
    path = Path(path)
    content = read_checkpoint(path)
    saved_arch = None
    if isinstance(content, dict):  # save_checkpoint puts arch at the top, train.py in "meta"
        meta = content.get("meta")
        saved_arch = content.get("arch") or (meta.get("arch") if isinstance(meta, dict) else None)
    if isinstance(saved_arch, str) and saved_arch != arch:
        raise ValueError(f"{path}: checkpoint is for architecture {saved_arch!r}, not {arch!r}")
    state = _state_dict_of(content, path)
    model = build_model(arch, input_shape, num_classes, seed=0, **options)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{path}: state dict does not fit {arch} for input {tuple(input_shape)} and "
            f"{num_classes} classes; missing keys {missing[:5]}, unexpected keys "
            f"{unexpected[:5]}, shape mismatches (file vs model) {mismatched[:5]}"
        )
    model.load_state_dict(state)
    return model.eval()
