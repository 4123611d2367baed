"""Feature extractors: the networks whose activations define the losses.

Each network is a torchvision model (or, for the paper's analysis, a small variant of one) cut
into named stages. `FeatureExtractor` runs the stages in order and returns the activations of
the layers asked for, stopping after the deepest one: nothing past it is ever computed.

Layer names and default loss layers:
- VGG-16 / VGG-19: `conv{b}_{i}`, `relu{b}_{i}`, `pool{b}`. Style relu1_1..relu5_1 (Gatys et
  al.), content relu3_1. Departure from Gatys et al. (relu4_2): with random weights, relu4_2
  hardly constrains the image (optimised from noise against it alone, no subject appears), so
  the subject was kept only by starting from the photo and dissolved as the style took over;
  relu3_1 keeps faces and buildings recognisable under a strong style (docs/quality.md). With
  pre-trained weights, `content_layer="relu4_2"` gives Gatys et al.'s choice.
- ResNet-50 / ResNet-101 / Wide-ResNet-50-2 / NoResNet-50: `conv1` = relu(bn1(conv1)), `maxpool`,
  `layer1`..`layer4`. Style conv1 and layer1..layer4, content layer3 (the public SWAG code).
- Inception-v3: torchvision's module names. Style Conv2d_2b_3x3, Conv2d_4a_3x3, Mixed_5d,
  Mixed_6e, Mixed_7c (the last block before each down-sampling), content Mixed_6e.
- pseudo_vgg / pseudo_resvgg: `relu{b}_{i}`, `pool{b}`; style and content layers are the last
  ReLU of each stage, content the fourth stage's (see `_PseudoVGG`).

"Deep" layers, the ones smoothed when only the deep layers are (as the public SWAG code smooths
layer3 and layer4 only): every loss layer from the second-to-last style layer on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torchvision.models as tvm
from torch import nn

from ..choices import ARCHITECTURE_NAMES, PRETRAINED_ARCHITECTURES
from ..errors import SwagError

# torchvision's models expect ImageNet-normalised input; random-weight models get the same
# input so that swapping weights changes nothing else.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg_stages(features: nn.Sequential) -> list[tuple[str, nn.Module]]:
    stages, block, conv = [], 1, 0
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            conv += 1
            stages.append((f"conv{block}_{conv}", layer))
        elif isinstance(layer, nn.ReLU):
            # In-place ReLUs would overwrite the conv outputs autograd keeps.
            stages.append((f"relu{block}_{conv}", nn.ReLU(inplace=False)))
        elif isinstance(layer, nn.MaxPool2d):
            stages.append((f"pool{block}", layer))
            block, conv = block + 1, 0
        else:
            raise TypeError(f"unexpected VGG layer {layer!r}")
    return stages


def _resnet_stages(model: tvm.ResNet) -> list[tuple[str, nn.Module]]:
    stem = nn.Sequential(model.conv1, model.bn1, nn.ReLU(inplace=False))
    return [("conv1", stem), ("maxpool", model.maxpool)] + [
        (name, getattr(model, name)) for name in ("layer1", "layer2", "layer3", "layer4")
    ]


_INCEPTION_ORDER = (
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
    "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
    "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
)


class _InputTransform(nn.Module):
    """Inception-v3's own input rescaling (torchvision applies it in forward(), which the stages
    bypass): ImageNet-normalised input -> the [-1, 1] scaling its weights were trained on."""

    def __init__(self, model: tvm.Inception3):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model._transform_input(x)


def _inception_stages(model: tvm.Inception3) -> list[tuple[str, nn.Module]]:
    return [("input", _InputTransform(model))] + [(n, getattr(model, n)) for n in _INCEPTION_ORDER]


class _NoShortcutBottleneck(nn.Module):
    """A ResNet bottleneck with its shortcut removed: relu(bn3(conv3(...))) without "+ x".

    It keeps the block's modules (the down-sampling branch included, unused) so that
    ResNet-50 state_dicts, pre-trained ones too, load unchanged."""

    def __init__(self, block: tvm.resnet.Bottleneck):
        super().__init__()
        self.block = block

    def forward(self, x):
        b = self.block
        out = b.relu(b.bn1(b.conv1(x)))
        out = b.relu(b.bn2(b.conv2(out)))
        return b.relu(b.bn3(b.conv3(out)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Accept ResNet-50 keys ("layer1.0.conv1.weight") as well as our own ("layer1.0.block.…").
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "block.")]:
            state_dict[prefix + "block." + key[len(prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _noresnet50() -> tvm.ResNet:
    model = tvm.resnet50(weights=None)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        layer = getattr(model, name)
        for i, block in enumerate(layer):
            layer[i] = _NoShortcutBottleneck(block)
    return model


class _PseudoVGG(nn.Module):
    """The paper's pseudo-VGG and pseudo-ResVGG (its Figure 3), which it does not specify further.

    Both follow VGG-19's shape: five stages of 3x3 convolutions (2, 2, 4, 4, 4 of them; 64, 128,
    256, 512, 512 channels), each conv followed by a ReLU, a 2x2 max-pool between stages, no
    batch norm, Kaiming-normal weights as torchvision's VGG. pseudo-ResVGG adds an identity
    shortcut around every conv whose input and output have the same width (all but the first
    of each stage): F_l = ReLU(conv(F_{l-1}) + F_{l-1}), the residual form of the paper's
    Section 3.2, so the two nets differ only in the shortcuts."""

    WIDTHS = (64, 128, 256, 512, 512)
    DEPTHS = (2, 2, 4, 4, 4)

    def __init__(self, residual: bool):
        super().__init__()
        self.residual = residual
        self.features = nn.ModuleDict()
        in_ch = 3
        for b, (width, depth) in enumerate(zip(self.WIDTHS, self.DEPTHS), start=1):
            for i in range(1, depth + 1):
                conv = nn.Conv2d(in_ch, width, 3, padding=1)
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
                self.features[f"conv{b}_{i}"] = conv
                in_ch = width

    def stages(self) -> list[tuple[str, nn.Module]]:
        stages = []
        for b, depth in enumerate(self.DEPTHS, start=1):
            for i in range(1, depth + 1):
                conv = self.features[f"conv{b}_{i}"]
                stages.append((f"relu{b}_{i}", _ConvReLU(conv, shortcut=self.residual and i > 1)))
            stages.append((f"pool{b}", nn.MaxPool2d(2, 2)))
        return stages


class _ConvReLU(nn.Module):
    def __init__(self, conv: nn.Conv2d, shortcut: bool):
        super().__init__()
        self.conv, self.shortcut = conv, shortcut

    def forward(self, x):
        y = self.conv(x)
        return torch.relu(y + x if self.shortcut else y)


@dataclass(frozen=True)
class Architecture:
    name: str
    title: str
    build: Callable[[], nn.Module]  # the whole model, randomly initialised
    stages: Callable[[nn.Module], list[tuple[str, nn.Module]]]
    style_layers: tuple[str, ...]
    content_layer: str
    min_size: int  # smallest input side the deepest default layer accepts
    imagenet: str | None  # torchvision weights enum name, e.g. "ResNet50_Weights"


_RESNET_STYLE = ("conv1", "layer1", "layer2", "layer3", "layer4")
_VGG_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
_PSEUDO_STYLE = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


def _vgg(builder):
    return lambda: builder(weights=None)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("vgg16", "VGG-16", _vgg(tvm.vgg16), lambda m: _vgg_stages(m.features),
                     _VGG_STYLE, "relu3_1", 16, "VGG16_Weights"),
        Architecture("vgg19", "VGG-19", _vgg(tvm.vgg19), lambda m: _vgg_stages(m.features),
                     _VGG_STYLE, "relu3_1", 16, "VGG19_Weights"),
        Architecture("resnet50", "ResNet-50", lambda: tvm.resnet50(weights=None), _resnet_stages,
                     _RESNET_STYLE, "layer3", 32, "ResNet50_Weights"),
        Architecture("resnet101", "ResNet-101", lambda: tvm.resnet101(weights=None), _resnet_stages,
                     _RESNET_STYLE, "layer3", 32, "ResNet101_Weights"),
        Architecture("wide_resnet50_2", "Wide-ResNet-50-2", lambda: tvm.wide_resnet50_2(weights=None),
                     _resnet_stages, _RESNET_STYLE, "layer3", 32, "Wide_ResNet50_2_Weights"),
        Architecture("inception_v3", "Inception-v3",
                     lambda: tvm.inception_v3(weights=None, aux_logits=True, init_weights=True,
                                              transform_input=True),
                     _inception_stages,
                     ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"),
                     "Mixed_6e", 75, "Inception_V3_Weights"),
        Architecture("noresnet50", "NoResNet-50 (ResNet-50 without shortcuts)", _noresnet50,
                     _resnet_stages, _RESNET_STYLE, "layer3", 32, "ResNet50_Weights"),
        Architecture("pseudo_vgg", "pseudo-VGG", lambda: _PseudoVGG(residual=False),
                     lambda m: m.stages(), _PSEUDO_STYLE, "relu4_4", 16, None),
        Architecture("pseudo_resvgg", "pseudo-ResVGG", lambda: _PseudoVGG(residual=True),
                     lambda m: m.stages(), _PSEUDO_STYLE, "relu4_4", 16, None),
    )
}
# The names that validation offers (choices.py) are the networks built here.
assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES, "choices.ARCHITECTURE_NAMES is out of date"
assert tuple(n for n, a in ARCHITECTURES.items() if a.imagenet) == PRETRAINED_ARCHITECTURES, \
    "choices.PRETRAINED_ARCHITECTURES is out of date"


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise SwagError(f"unknown network {name!r}: choose one of {', '.join(ARCHITECTURES)}") from None


def _average_pool(pool: nn.MaxPool2d) -> nn.AvgPool2d:
    """The average pooling over the same windows as `pool` (Gatys et al. 2016 replace VGG's max
    pooling so; with random weights it keeps the gradient from reaching only the window's
    maximum, which otherwise leaves pixel-level grain). Only the networks' own pooling stages
    are replaced (VGG's pool1..pool5, ResNet's stem pool, Inception-v3's maxpool1/2), not
    pooling inside their blocks. No rescaling of the output: the losses are normalised per layer."""
    return nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)


class FeatureExtractor(nn.Module):
    """The stages of a network up to its deepest requested layer, frozen, in eval mode."""

    def __init__(self, arch: Architecture, model: nn.Module, layers: Iterable[str], pooling: str = "max"):
        super().__init__()
        named = arch.stages(model)
        if pooling == "avg":
            named = [(name, _average_pool(m) if isinstance(m, nn.MaxPool2d) else m) for name, m in named]
        order = [name for name, _ in named]
        self.layers = tuple(layers)
        unknown = [n for n in self.layers if n not in order]
        if unknown:
            raise SwagError(f"{arch.name} has no layer {unknown[0]!r}; its layers are {', '.join(order)}")
        last = max(order.index(n) for n in self.layers)
        self.order = order[: last + 1]
        self.stages = nn.ModuleList(module for _, module in named[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def depth_of(self, layer: str) -> int:
        return self.order.index(layer)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """image: (B, 3, H, W) RGB in [0, 1]. Returns {layer: activation} for `layers` (default
        self.layers), running the stages only as far as the deepest of them."""
        wanted = set(self.layers if layers is None else layers)
        out = {}
        if not wanted:
            return out
        last = max(self.depth_of(name) for name in wanted)
        x = (image - self.mean) / self.std
        for name, stage in zip(self.order[: last + 1], self.stages):
            x = stage(x)
            if name in wanted:
                out[name] = x
        return out
