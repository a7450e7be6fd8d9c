"""A model plugin: a residual MLP (pre-norm blocks `x + W2 gelu(W1 LayerNorm(x))`) for samples of any shape.

An `nn.Module` class whose constructor takes lossforge's keyword-only `input_shape` and `output_dim`
plus its own typed parameters; it never imports lossforge.

```pycon
>>> import torch
>>> ResidualMLP(input_shape=(2,), output_dim=3, width=16, blocks=2)(torch.zeros(4, 2)).shape
torch.Size([4, 3])

```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, features: Tensor) -> Tensor:
        return features + self.body(features)


class ResidualMLP(nn.Module):
    """Flatten, project to `width`, `blocks` residual blocks, a linear head.

    Args:
        input_shape: one sample's shape (lossforge passes it).
        output_dim: the output width (lossforge passes it).
        width: the width of the residual stream.
        blocks: the number of residual blocks.

    Shape:
        `(N, *input_shape) → (N, output_dim)`
    """

    def __init__(self, *, input_shape: Sequence[int], output_dim: int, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"residual_mlp: expected width >= 1 and blocks >= 0, got {width}, {blocks}")
        self.stem = nn.Linear(math.prod(input_shape), width)
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.head = nn.Linear(width, output_dim)

    def forward(self, features: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(features.flatten(1))))  # (N, F) → (N, width) → (N, output_dim)
