"""The lecture's MLP: fully connected layers with an activation between them, on flattened samples.

The lecture's network is a 3-layer tanh MLP, 784-512-512-10, with softmax on top. The softmax is not a
layer here: it lives in the loss (`log_softmax` inside cross-entropy is the numerically stable form),
so the model returns logits / scores / embeddings and the loss decides how to read them.

```pycon
>>> sum(p.numel() for p in MLP(input_shape=(784,), output_dim=10).parameters())  # the lecture's 669,706
669706

```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def activation_layer(name: str) -> nn.Module:
    """A fresh activation module named `name` (`tanh`, `relu`, `gelu`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected network: `prod(input_shape) → hidden… → output_dim`, an activation between layers.

    Each sample is flattened first, so an MLP takes images too (a baseline, not a good image model).

    Args:
        input_shape: one sample's shape, e.g. `(784,)` for MNIST, `(64,)` for 8×8 digits.
        output_dim: size of the output (classes, labels, regression targets or embedding dimension).
        hidden: widths of the hidden layers; the lecture uses `(512, 512)`.
        activation: `"tanh"` (the lecture), `"relu"` or `"gelu"`.
        dropout: dropout probability after each hidden activation (0 disables it).

    Shape:
        `(N, *input_shape) → (N, output_dim)`
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        output_dim: int,
        hidden: Sequence[int] = (512, 512),
        activation: str = "tanh",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        input_dim = math.prod(input_shape)
        if input_dim < 1 or output_dim < 1 or any(width < 1 for width in hidden):
            raise ValueError(
                f"mlp: expected positive layer sizes, got input_shape={tuple(input_shape)}, hidden={list(hidden)}, "
                f"output_dim={output_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"mlp: expected `dropout` in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = input_dim
        for next_width in hidden:
            layers += [nn.Linear(width, next_width), activation_layer(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = next_width
        layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features.flatten(1))  # (N, *input_shape) → (N, F) → (N, output_dim)
