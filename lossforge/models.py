"""Models, named in configs by registry name: the lecture's MLP, and the same trunk as an embedding model.

The lecture's network is a 3-layer tanh MLP, 784-512-512-10, with softmax on top. The softmax is not a
layer here: it lives in the loss (``log_softmax`` inside cross-entropy is the numerically stable form),
so the model returns logits / scores / embeddings and the loss decides how to read them.

>>> count_parameters(MLP(input_dim=784, output_dim=10))  # the lecture's 669,706
669706
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from lossforge.contract import did_you_mean

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
#: Models whose output is an embedding (what a metric loss trains).
EMBEDDING_MODELS = ("embedding_mlp",)
#: For a classifier-shaped model, the model with the same trunk and an embedding head (64-d, L2-normalised).
EMBEDDING_VARIANTS = {"mlp": "embedding_mlp"}


def _check_name(name: str) -> None:
    if name not in MODELS:
        available = ", ".join(sorted(MODELS))
        raise ValueError(f"Unknown model {name!r}.{did_you_mean(name, MODELS, n=1)} Available models: {available}.")


def model_for_task(name: str, *, embedding: bool) -> str:
    """The model to build when the config names ``name``: ``name`` itself, or — when the task trains an
    embedding (a metric loss) and ``name`` outputs class scores — its embedding variant. The caller logs
    the swap; a model without a variant fails, naming the embedding models.

    >>> model_for_task("mlp", embedding=True), model_for_task("mlp", embedding=False)
    ('embedding_mlp', 'mlp')
    """
    _check_name(name)
    if not embedding or name in EMBEDDING_MODELS:
        return name
    if name not in EMBEDDING_VARIANTS:
        raise ValueError(
            f"Model {name!r} outputs class scores, but a metric loss trains an embedding: choose one of "
            f"{', '.join(EMBEDDING_MODELS)} (model=<name>)."
        )
    return EMBEDDING_VARIANTS[name]


def build_model(name: str, *, input_dim: int, output_dim: int, **params: object) -> nn.Module:
    """Build the model registered as ``name`` for data with ``input_dim`` features.

    ``output_dim`` comes from the task (classes, labels, targets); an embedding model ignores it and uses
    its own ``embedding_dim``. Which model a task needs is :func:`model_for_task`'s answer.
    """
    _check_name(name)
    if name in EMBEDDING_MODELS:
        return MODELS[name](input_dim=input_dim, **params)
    return MODELS[name](input_dim=input_dim, output_dim=output_dim, **params)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
