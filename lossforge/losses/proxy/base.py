"""What the proxy losses share: their input checks, the cosine of embeddings and proxies, and `_ProxyLoss`,
the base class that owns the `proxies` parameter (made by `prepare` or the constructor, checked against a
checkpoint's).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lossforge.contract import Task
from lossforge.losses.base import Loss, LossInputError, Reduction, input_error, shape

EXPECTED_INPUTS = "embeddings (N, D) of a floating dtype and integer labels (N,)"


# -- input checks ------------------------------------------------------------------------------------


def _check_inputs(loss_name: str, embeddings: Tensor, labels: Tensor, proxies: Tensor, *, scan: bool = True) -> None:
    """Shapes and dtypes of embeddings, labels and proxies; with `scan`, labels in `[0, C)`."""
    is_integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    if not (
        embeddings.dim() == 2
        and embeddings.is_floating_point()
        and labels.dim() == 1
        and is_integer
        and labels.shape[0] == embeddings.shape[0]
    ):
        got = f"embeddings {shape(embeddings)} {embeddings.dtype} and labels {shape(labels)} {labels.dtype}"
        raise input_error(loss_name, EXPECTED_INPUTS, got)
    if proxies.dim() != 2 or proxies.shape[1] != embeddings.shape[1]:
        raise input_error(
            loss_name,
            f"{proxies.shape[1]}-d embeddings, the width of its {proxies.shape[0]} class proxies {shape(proxies)}",
            f"embeddings {shape(embeddings)}; a model with another embedding size needs a loss prepared for it",
        )
    if scan and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= proxies.shape[0]):
        raise input_error(
            loss_name,
            f"labels in [0, {proxies.shape[0] - 1}] (it has proxies for {proxies.shape[0]} classes)",
            f"labels from {int(labels.min())} to {int(labels.max())}",
        )


def _check_indices(loss_name: str, indices_tuple: Any) -> None:
    if indices_tuple is not None:
        raise LossInputError(
            f"{loss_name}: expected indices_tuple=None, got a miner's tuples: it compares each embedding with "
            f"its class proxies, not pairs or triplets. Drop the miner (miner=null)."
        )


def _cosine(embeddings: Tensor, proxies: Tensor) -> Tensor:
    """Cosine similarity of every embedding with every proxy, in the embeddings' dtype."""
    return F.normalize(embeddings, dim=1) @ F.normalize(proxies.to(embeddings.dtype), dim=1).T  # (N, C)


def _check_positive(loss_name: str, **values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{loss_name}: expected `{key}` > 0, got {value}")


class _ProxyLoss(Loss):
    """What the five share: the `proxies` parameter — made by `prepare` or the constructor, checked
    against a checkpoint's — and the input checks."""

    tasks: ClassVar[tuple[Task, ...]] = (Task.METRIC,)
    tuple_kind: ClassVar[str | None] = None  # no pairs or triplets: the proxies are the other side
    distance: ClassVar[str] = "cosine"
    """Everything here compares normalised vectors, so retrieval is evaluated by cosine too."""
    lr_multiplier: ClassVar[float] = 1.0
    """The proxies' learning rate is `optimizer.lr` times this (`optimizer.loss_lr_multiplier` overrides)."""

    proxies: nn.Parameter | None

    def __init__(self, *, num_classes: int | None, embedding_dim: int | None, reduction: Reduction) -> None:
        super().__init__(reduction=reduction)
        self.register_parameter("proxies", None)
        if (num_classes is None) != (embedding_dim is None):
            raise ValueError(
                f"{self.name}: expected both `num_classes` and `embedding_dim` or neither (then `prepare` sizes "
                f"the proxies from the data), got num_classes={num_classes}, embedding_dim={embedding_dim}"
            )
        if num_classes is not None and embedding_dim is not None:
            self._make(num_classes, embedding_dim)

    def _make(self, num_classes: int, embedding_dim: int) -> None:
        for key, value in (("num_classes", num_classes), ("embedding_dim", embedding_dim)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{self.name}: expected `{key}` to be an int >= 1, got {value!r}")
        proxies = torch.empty(num_classes, embedding_dim)
        self._initialize(proxies)
        self.proxies = nn.Parameter(proxies)

    def _initialize(self, proxies: Tensor) -> None:
        """Draw the initial proxies from torch's global generator (the run has seeded it)."""
        nn.init.normal_(proxies)

    def prepare(self, *, targets: Tensor, num_classes: int, embedding_dim: int | None = None) -> None:
        """Make the proxies `(num_classes, embedding_dim)`; keep existing ones of that shape (a second call,
        or sizes given to the constructor); an error naming both shapes if they differ. A binary dataset
        says `num_classes=1` (one output); its labels 0 and 1 get a proxy each, as do any labels
        `targets` holds beyond `num_classes`."""
        if isinstance(targets, Tensor) and targets.numel() and not targets.is_floating_point():
            num_classes = max(num_classes, int(targets.max()) + 1)
        if embedding_dim is None:
            raise ValueError(
                f"{self.name}: `prepare` needs `embedding_dim`, the width of the model's embeddings, to size "
                f"its class proxies (lossforge's training passes it for the metric task)"
            )
        if self.proxies is None:
            self._make(num_classes, embedding_dim)
        elif tuple(self.proxies.shape) != (num_classes, embedding_dim):
            raise ValueError(
                f"{self.name}: its proxies are for {self._sizes(self.proxies.shape)}, but the data and model have "
                f"{self._sizes((num_classes, embedding_dim))}; build it with num_classes={num_classes}, "
                f"embedding_dim={embedding_dim}, or leave both out"
            )

    @staticmethod
    def _sizes(size: tuple[int, ...] | torch.Size) -> str:
        return f"{size[0]} classes of {size[1]}-d embeddings"

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # A loss not prepared yet takes the checkpoint's size; a prepared one of another size is a changed
        # dataset or model, said in words rather than as torch's size-mismatch text.
        saved = state_dict.get(prefix + "proxies")
        if isinstance(saved, Tensor):
            if self.proxies is None:
                self.proxies = nn.Parameter(torch.empty(saved.shape, dtype=saved.dtype))
            elif saved.shape != self.proxies.shape:
                raise LossInputError(
                    f"{self.name}: the checkpoint holds proxies for {self._sizes(saved.shape)}, but this run's "
                    f"data and model have {self._sizes(self.proxies.shape)}: resume with the dataset and model "
                    f"(embedding_dim) the checkpoint was trained with"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _checked(self, embeddings: Tensor, labels: Tensor, indices_tuple: Any) -> Tensor:
        _check_indices(self.name, indices_tuple)
        if self.proxies is None:
            raise LossInputError(
                f"{self.name}: has no class proxies yet: call prepare(targets=..., num_classes=C, embedding_dim=D) "
                f"first (lossforge's training does), or build it with num_classes and embedding_dim"
            )
        _check_inputs(self.name, embeddings, labels, self.proxies, scan=self.scan_targets)
        return self.proxies

    def _shape_repr(self) -> str:
        if self.proxies is None:
            return "num_classes=None, embedding_dim=None"  # sized by `prepare`
        return f"num_classes={self.proxies.shape[0]}, embedding_dim={self.proxies.shape[1]}"
