"""A small convolutional network for `(C, H, W)` images: conv blocks, global average pooling, a linear head.

```pycon
>>> import torch
>>> CNN(input_shape=(3, 32, 32), output_dim=10, channels=(8, 16))(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])

```
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class CNN(nn.Module):
    """`len(channels)` blocks of 3×3 convolution → BatchNorm → ReLU → 2×2 max-pool, then global average
    pooling and a linear head.

    Args:
        input_shape: one image's shape `(C, H, W)`.
        output_dim: size of the output (classes, labels, or the embedding dimension).
        channels: output channels of each block; each block halves the height and width.
        dropout: dropout probability before the head (0 disables it).

    Shape:
        `(N, C, H, W) → (N, output_dim)`
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        output_dim: int,
        channels: Sequence[int] = (32, 64, 128),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"cnn: expected images of shape (C, H, W), got samples of shape {tuple(input_shape)}; "
                "use model=mlp for flat features"
            )
        if not channels or any(width < 1 for width in channels) or output_dim < 1:
            raise ValueError(f"cnn: expected positive channels and output_dim, got {list(channels)}, {output_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"cnn: expected `dropout` in [0, 1), got {dropout}")
        blocks: list[nn.Module] = []
        width = int(input_shape[0])
        for next_width in channels:
            blocks += [
                nn.Conv2d(width, next_width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(next_width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),  # ceil: a 1-pixel map stays 1 pixel
            ]
            width = next_width
        self.trunk = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, output_dim))

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.trunk(images))  # (N, C, H, W) → (N, channels[-1]) → (N, output_dim)
