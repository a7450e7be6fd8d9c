"""Models, named in configs by registry name (entry-point group `lossforge.models`): `mlp` (and its alias
`embedding_mlp`), `cnn`, `resnet`, or any plugin's `nn.Module` class.

A model class takes keyword-only `input_shape` and `output_dim` plus its own parameters. lossforge's own
settings beside them — the **reserved keys** `model.weights`, `model.freeze_batchnorm`,
`model.embedding_dim` and `model.normalize` — are applied here and never passed to the class. One rule for
every model, built-in or plugin: under a metric loss the model is built with `output_dim = embedding_dim`
(64 unless set) and its output L2-normalised unless `model.normalize=false`.

```pycon
>>> model = build_model("mlp", input_shape=(64,), output_dim=10, embedding=True, hidden=[32], embedding_dim=8)
>>> import torch
>>> torch.linalg.vector_norm(model(torch.randn(5, 64)), dim=1).allclose(torch.ones(5))
True

```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from lossforge.contract import RESERVED_MODEL_KEYS
from lossforge.models.cnn import CNN
from lossforge.models.mlp import MLP
from lossforge.models.resnet import ResNet
from lossforge.models.weights import load_weights

__all__ = ["CNN", "MLP", "Network", "ResNet", "build_model", "count_parameters", "list_models", "load_weights"]

log = logging.getLogger("lossforge")
DEFAULT_EMBEDDING_DIM = 64
"""The embedding width a metric loss trains when `model.embedding_dim` is not set."""


class Network(nn.Module):
    """A model with lossforge's settings around it: the input pipeline (`uint8` → float, augmentation on the
    training split, per-channel normalisation; [lossforge.data.device.InputPipeline][]), L2-normalised
    embeddings, frozen BatchNorm. The output is float32 (under `bf16-mixed` the loss is computed in float32).

    Shape:
        `(N, *input_shape) → (N, output_dim)`
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inputs: nn.Module | None = None,
        normalize: bool = False,
        freeze_batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.inputs, self.model = inputs, model
        self.normalize, self.freeze_batchnorm = normalize, freeze_batchnorm
        if freeze_batchnorm:
            for module in self._batchnorms():
                for parameter in module.parameters():
                    parameter.requires_grad_(False)

    def _batchnorms(self) -> list[nn.Module]:
        return [module for module in self.model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> Network:
        super().train(mode)
        if self.freeze_batchnorm:  # running statistics stay those of the pretrained trunk (Lightning calls train())
            for module in self._batchnorms():
                module.eval()
        return self

    def forward(self, features: Tensor) -> Tensor:
        if self.inputs is not None:
            features = self.inputs(features)
        outputs = self.model(features).float()  # (N, output_dim), float32 even under bf16 autocast
        return F.normalize(outputs, dim=1) if self.normalize else outputs


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching `pattern`.

    ```pycon
    >>> [name for name in list_models() if name in ("cnn", "mlp", "resnet")]
    ['cnn', 'mlp', 'resnet']

    ```
    """
    from lossforge.registry import MODELS

    return MODELS.names(pattern)


def split_model_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(reserved settings, the model's own parameters)` of a model config (its `name` left out).

    ```pycon
    >>> split_model_config({"name": "mlp", "hidden": [8], "embedding_dim": 16, "weights": None})
    ({'embedding_dim': 16, 'weights': None}, {'hidden': [8]})

    ```
    """
    reserved = {key: value for key, value in config.items() if key in RESERVED_MODEL_KEYS}
    own = {key: value for key, value in config.items() if key not in RESERVED_MODEL_KEYS and key != "name"}
    return reserved, own


def build_model(
    name: str,
    *,
    input_shape: Sequence[int],
    output_dim: int,
    embedding: bool = False,
    inputs: nn.Module | None = None,
    **config: Any,
) -> nn.Module:
    """Build the model registered as `name` for samples of `input_shape`.

    `output_dim` comes from the task (classes, labels, targets); under a metric loss (`embedding=True`)
    the model gets `output_dim = model.embedding_dim` instead and, unless `model.normalize=false`, an
    L2-normalised output. `model.weights` loads a trunk ([load_weights][lossforge.models.weights.load_weights]);
    `model.freeze_batchnorm` keeps BatchNorm statistics and affine parameters fixed. `inputs` is the data's input
    pipeline, if any. The reserved keys are never passed to the model's class.
    """
    from lossforge.registry import MODELS, RegistryError

    reserved, own = split_model_config(config)
    width = int(reserved.get("embedding_dim") or DEFAULT_EMBEDDING_DIM) if embedding else output_dim
    try:
        model = MODELS.build(name, input_shape=tuple(int(size) for size in input_shape), output_dim=width, **own)
    except RegistryError as error:
        raise ValueError(str(error)) from None
    if reserved.get("weights"):
        load_weights(model, reserved["weights"])
    normalize = embedding and bool(reserved.get("normalize", True))
    freeze = bool(reserved.get("freeze_batchnorm", False))
    if inputs is None and not normalize and not freeze:
        return model
    return Network(model, inputs=inputs, normalize=normalize, freeze_batchnorm=freeze)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
