"""Models, named in configs by registry name: the lecture's MLP, and the same trunk as an embedding model.

The lecture's network is a 3-layer tanh MLP, 784-512-512-10, with softmax on top. The softmax is not a
layer here: it lives in the loss (``log_softmax`` inside cross-entropy is the numerically stable form),
so the model returns logits / scores / embeddings and the loss decides how to read them.

>>> count_parameters(MLP(input_dim=784, output_dim=10))  # the lecture's 669,706
669706
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected network: ``input_dim → hidden… → output_dim``, an activation between layers.

    Args:
        input_dim: features per sample (784 for MNIST, 64 for 8×8 digits).
        output_dim: size of the output (classes, labels, regression targets or embedding dimension).
        hidden: widths of the hidden layers; the lecture uses ``(512, 512)``.
        activation: ``"tanh"`` (the lecture), ``"relu"`` or ``"gelu"``.
        dropout: dropout probability after each hidden activation (0 disables it).

    Shape:
        ``(N, input_dim) → (N, output_dim)``
    """

    def __init__(
        self,
        *,
        input_dim: int,
        output_dim: int,
        hidden: Sequence[int] = (512, 512),
        activation: str = "tanh",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if input_dim < 1 or output_dim < 1 or any(width < 1 for width in hidden):
            raise ValueError(
                f"mlp: expected positive layer sizes, got input_dim={input_dim}, hidden={list(hidden)}, "
                f"output_dim={output_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"mlp: expected `dropout` in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        width = input_dim
        for next_width in hidden:
            layers += [nn.Linear(width, next_width), _activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = next_width
        layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.layers(features)


class EmbeddingMLP(MLP):
    """The MLP trunk with a ``embedding_dim``-wide linear head, optionally L2-normalised (for metric losses).

    >>> import torch
    >>> model = EmbeddingMLP(input_dim=64, embedding_dim=8, hidden=(32,), normalize=True)
    >>> torch.linalg.vector_norm(model(torch.randn(5, 64)), dim=1).allclose(torch.ones(5))
    True
    """

    def __init__(
        self,
        *,
        input_dim: int,
        embedding_dim: int = 64,
        hidden: Sequence[int] = (512, 512),
        activation: str = "tanh",
        dropout: float = 0.0,
        normalize: bool = True,
    ) -> None:
        super().__init__(
            input_dim=input_dim,
            output_dim=embedding_dim,
            hidden=hidden,
            activation=activation,
            dropout=dropout,
        )
        self.normalize = normalize

    def forward(self, features: Tensor) -> Tensor:
        embeddings = self.layers(features)  # (N, embedding_dim)
        return F.normalize(embeddings, dim=1) if self.normalize else embeddings


MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "embedding_mlp": EmbeddingMLP}


def build_model(name: str, *, input_dim: int, output_dim: int, embedding: bool = False, **params: object) -> nn.Module:
    """Build the model registered as ``name`` for data with ``input_dim`` features.

    ``output_dim`` comes from the task (classes, labels, targets). With ``embedding=True`` (a metric loss)
    the model must produce embeddings: ``embedding_mlp`` uses its own ``embedding_dim``, and the plain
    ``mlp`` becomes the same trunk with an L2-normalised 64-d head — unnormalised embeddings let their
    scale outgrow any margin, which is why FaceNet-style training normalises.
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Available models: {', '.join(sorted(MODELS))}.")
    if name == "embedding_mlp":
        return EmbeddingMLP(input_dim=input_dim, **params)  # type: ignore[arg-type]
    if embedding:
        return EmbeddingMLP(input_dim=input_dim, embedding_dim=64, normalize=True, **params)  # type: ignore[arg-type]
    return MODELS[name](input_dim=input_dim, output_dim=output_dim, **params)  # type: ignore[call-arg]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
