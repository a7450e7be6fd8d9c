"""ResNet-18 / ResNet-34 style networks in plain PyTorch (He et al., 2016), with a CIFAR stem for small images.

Basic blocks of two 3×3 convolutions with an identity (or 1×1 projection) shortcut; four stages of
`width`, `2·width`, `4·width`, `8·width` channels with `(2, 2, 2, 2)` blocks (depth 18) or
`(3, 4, 6, 3)` (depth 34). The ImageNet stem is a 7×7 stride-2 convolution and a max-pool; the CIFAR
stem (`stem="cifar"`, or `"auto"` for inputs of at most 64 pixels) is one 3×3 stride-1 convolution, so a
32×32 image is not reduced to 8×8 before the first block.

```pycon
>>> import torch
>>> model = ResNet(input_shape=(3, 32, 32), output_dim=10, width=8)
>>> model(torch.zeros(2, 3, 32, 32)).shape, model.stem_kind
(torch.Size([2, 10]), 'cifar')

```
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

DEPTHS: dict[int, tuple[int, int, int, int]] = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
"""Blocks per stage for each supported depth."""


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers plus the shortcut: $y = \\mathrm{relu}(F(x) + S(x))$."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, features: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(features)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(features))


class ResNet(nn.Module):
    """A ResNet-18/34 style network; the last layer, `fc`, is the head (re-initialised by `model.weights`
    when the class count differs).

    Args:
        input_shape: one image's shape `(C, H, W)`.
        output_dim: size of the output (classes, labels, or the embedding dimension).
        depth: 18 or 34.
        width: channels of the first stage (64 in the paper); the stages have 1, 2, 4, 8 times as many.
        stem: `"imagenet"` (7×7 stride 2 + max-pool), `"cifar"` (3×3 stride 1) or `"auto"`: cifar
            for images of at most 64 pixels a side.

    Shape:
        `(N, C, H, W) → (N, output_dim)`
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        output_dim: int,
        depth: int = 18,
        width: int = 64,
        stem: str = "auto",
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"resnet: expected images of shape (C, H, W), got samples of shape {tuple(input_shape)}")
        if depth not in DEPTHS:
            raise ValueError(f"resnet: expected `depth` in {sorted(DEPTHS)}, got {depth}")
        if width < 1 or output_dim < 1:
            raise ValueError(f"resnet: expected positive width and output_dim, got {width}, {output_dim}")
        if stem not in ("auto", "cifar", "imagenet"):
            raise ValueError(f"resnet: expected `stem` in auto | cifar | imagenet, got {stem!r}")
        channels, height = int(input_shape[0]), int(input_shape[1])
        self.stem_kind = ("cifar" if height <= 64 else "imagenet") if stem == "auto" else stem
        if self.stem_kind == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(channels, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        stages: list[nn.Module] = []
        in_channels = width
        for index, blocks in enumerate(DEPTHS[depth]):
            out_channels = width * 2**index
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(in_channels, out_channels, stride))
                in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(in_channels, output_dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.pool(self.stages(self.stem(images))))  # (N, C, H, W) → (N, 8·width) → (N, output_dim)
