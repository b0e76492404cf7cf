"""The backbone: a ResNet whose stages 3, 4 and 5 are tapped as C3, C4, C5 (strides 8, 16, 32).

Paper, Section 4 ("Feature Pyramid Network Backbone"): RetinaNet builds its pyramid on ResNet; C2 is skipped "for computational
reasons" (at stride 4 it would hold four times as many anchors as P3). A tap is the *output* of a
stage (after its last block's residual sum and ReLU), which is exactly what torchvision's
``IntermediateLayerGetter`` returns for ``layer2``, ``layer3`` and ``layer4``.

Frozen BatchNorm: a detector trains with a few images per GPU, far too few for batch statistics, so
a pretrained backbone keeps its BatchNorm fixed. "Fixed" must mean both the running statistics *and*
the affine weight and bias: `FrozenBatchNorm2d` holds all four as buffers, so no optimiser can move
them. (Calling ``.eval()`` on a BatchNorm only freezes the statistics; its weight and bias still train.)

Width: ``width < 1`` builds the same ResNet (same blocks, same module names, so the same
state-dict keys) with every stage's channels multiplied by ``width``, for a classroom detector that
trains from scratch on a CPU (``notebooks/07_training.ipynb``). ``width=1`` is torchvision's ResNet.

Taught in ``notebooks/01_resnet_taps.ipynb``.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from .config import GROUP_NORM_GROUPS

STAGE_CHANNELS = {  # output channels of C3, C4, C5
    "resnet18": (128, 256, 512),
    "resnet34": (128, 256, 512),
    "resnet50": (512, 1024, 2048),
    "resnet101": (512, 1024, 2048),
    "resnet152": (512, 1024, 2048),
}
# Residual block type and blocks per stage (layer1..layer4), as torchvision builds them.
ARCHITECTURES = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}
STEM_CHANNELS = 64  # conv1's output channels at width 1
STAGE_PLANES = (64, 128, 256, 512)  # planes of layer1..layer4 at width 1
# Trainable parts, from the top: trainable_layers=3 trains layer4, layer3, layer2 (torchvision's default).
TRAINABLE_ORDER = ("layer4", "layer3", "layer2", "layer1", "conv1")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters.

    y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, where all four tensors are
    buffers, not parameters: no optimiser can change them. State-dict compatible with ``nn.BatchNorm2d`` and torchvision's
    ``FrozenBatchNorm2d`` (same arithmetic).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # present in nn.BatchNorm2d checkpoints
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        # y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, with fixed statistics: the
        # fused inference-mode kernel computes exactly this in one pass (and lets gradients reach x).
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def norm_layer_for(kind: str):
    """The normalisation layer class for a backbone: frozen BN, trainable BN, or GroupNorm."""
    if kind == "frozen_bn":
        return FrozenBatchNorm2d
    if kind == "bn":
        return nn.BatchNorm2d
    if kind == "group":
        return lambda channels: nn.GroupNorm(min(GROUP_NORM_GROUPS, channels), channels)
    raise ValueError(f"backbone_norm={kind!r}: expected 'frozen_bn', 'bn' or 'group'")


def scaled_channels(channels: int, width: float) -> int:
    """A channel count times `width`, rounded, at least 1."""
    return max(1, round(channels * width))


def narrow_resnet(name: str, width: float, norm_layer) -> nn.Module:
    """torchvision's ResNet `name` with `width` times the channels in every stage.

    Built as torchvision's ``ResNet._make_layer`` does, from its own ``BasicBlock`` / ``Bottleneck``,
    with its initialisation, so module names and state-dict keys are those of torchvision's ResNet.
    """
    block, num_blocks = ARCHITECTURES[name]
    resnet = nn.Module()
    stem = scaled_channels(STEM_CHANNELS, width)
    resnet.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
    resnet.bn1 = norm_layer(stem)
    resnet.relu = nn.ReLU(inplace=True)
    resnet.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    in_channels = stem
    for i, (planes, blocks) in enumerate(zip(STAGE_PLANES, num_blocks), start=1):
        planes = scaled_channels(planes, width)
        out_channels = planes * block.expansion
        stride = 1 if i == 1 else 2
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))
        layers = [block(in_channels, planes, stride, downsample, norm_layer=norm_layer)]
        layers += [block(out_channels, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
        setattr(resnet, f"layer{i}", nn.Sequential(*layers))
        in_channels = out_channels
    for module in resnet.modules():  # torchvision's ResNet initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)
    return resnet


class ResNetTaps(nn.Module):
    """A torchvision ResNet without its classifier, returning [C3, C4, C5].

    `width` multiplies every stage's channels (1.0: torchvision's ResNet exactly).
    """

    def __init__(self, name: str = "resnet50", norm: str = "frozen_bn", trainable_layers: int = 3,
                 width: float = 1.0) -> None:
        super().__init__()
        if name not in STAGE_CHANNELS:
            raise ValueError(f"name={name!r}: expected one of {sorted(STAGE_CHANNELS)}")
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers={trainable_layers}: expected 0..5")
        if not 0.0 < width <= 1.0:
            raise ValueError(f"width={width}: expected a channel multiplier in (0, 1]")
        if width == 1.0:
            resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer_for(norm))
        else:
            resnet = narrow_resnet(name, width, norm_layer_for(norm))
        # Keep torchvision's names (conv1, bn1, layer1..4) so its checkpoints load unchanged.
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        self.name = name
        self.width = width
        expansion = ARCHITECTURES[name][0].expansion
        self.out_channels = tuple(scaled_channels(p, width) * expansion for p in STAGE_PLANES[1:])
        self.set_trainable_layers(trainable_layers)

    def set_trainable_layers(self, trainable_layers: int) -> None:
        """Train the top `trainable_layers` parts (layer4 first ... conv1 last); freeze the rest."""
        trainable = TRAINABLE_ORDER[:trainable_layers]
        if trainable_layers == 5:
            trainable = (*trainable, "bn1")
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(name.startswith(trainable))
        self.trainable_layers = trainable_layers

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # stride 4
        c2 = self.layer1(x)  # stride 4, skipped by RetinaNet
        c3 = self.layer2(c2)  # stride 8
        c4 = self.layer3(c3)  # stride 16
        c5 = self.layer4(c4)  # stride 32
        return [c3, c4, c5]


def load_imagenet_weights(backbone: ResNetTaps, weights: str = "DEFAULT") -> ResNetTaps:
    """Load torchvision's ImageNet weights into `backbone`, from the local cache or by downloading.

    Only called when a user asks. Without a network and without the file in torch's cache
    (``~/.cache/torch/hub/checkpoints``), it fails with a message that says what to do.
    """
    enum = torchvision.models.get_model_weights(backbone.name)
    entry = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    try:
        state = entry.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # URLError is an OSError
        raise RuntimeError(
            f"Could not load the ImageNet weights {entry} ({error}). They are downloaded from {entry.url} "
            f"into torch's cache ({torch.hub.get_dir()}/checkpoints). On a machine without internet, copy "
            "that file there from a machine that has it, or train from scratch (weights are optional)."
        ) from error
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith("fc.")]
    if missing or unexpected:
        raise RuntimeError(f"ImageNet weights do not fit {backbone.name}: missing {missing}, unexpected {unexpected}")
    return backbone


def imagenet_weights_on_disk(name: str = "resnet50") -> bool:
    """True when torchvision's default ImageNet weights for `name` are already in torch's cache."""
    entry = torchvision.models.get_model_weights(name).DEFAULT
    filename = os.path.basename(entry.url)
    return os.path.exists(os.path.join(torch.hub.get_dir(), "checkpoints", filename))

