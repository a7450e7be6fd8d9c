"""Pretrained weights for any model: `model.weights=<path>` (safetensors, or a `torch.save` file read with
`torch.load(weights_only=True)`, which builds tensors only and never runs pickled code).

The trunk is loaded; the head — the model's last `nn.Linear` — is kept freshly initialised when its shape
differs (another class count). Any other layer whose shape differs, and any missing or unexpected layer, is an
error that names them: a silently half-loaded network would train from a random trunk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger("lossforge")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors stored at `path`: a `.safetensors` file, or a `torch.save` file of a state dict (a
    Lightning checkpoint's `state_dict` of a lossforge run is read too, its `model.` prefix removed)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.weights={path}: no such file")
    if file.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(f"model.weights={path}: reading .safetensors needs `pip install safetensors`") from None

        return dict(load_file(str(file)))
    loaded = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(value, Tensor) for value in loaded.values()):
        raise ValueError(
            f"model.weights={path}: expected a state dict (layer name → tensor), got {type(loaded).__name__}"
        )
    prefix = "model."
    if loaded and all(key.startswith(prefix) for key in loaded):
        loaded = {key.removeprefix(prefix): value for key, value in loaded.items()}
    return loaded


def head_prefix(model: nn.Module) -> str | None:
    """The name of `model`'s last `nn.Linear` (its head), or `None` when it has none.

    ```pycon
    >>> head_prefix(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    '2'

    ```
    """
    heads = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return heads[-1] if heads else None


def load_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load the weights at `path` into `model`; return the head's parameters kept re-initialised (their
    shapes differed), or raise a `ValueError` naming every other layer that does not fit."""
    stored = read_state_dict(path)
    own = model.state_dict()
    head = head_prefix(model)
    missing = sorted(set(own) - set(stored))
    unexpected = sorted(set(stored) - set(own))
    differing = [key for key in own if key in stored and stored[key].shape != own[key].shape]
    reinitialised = [key for key in differing if head is not None and key.rpartition(".")[0] == head]
    wrong = [key for key in differing if key not in reinitialised]
    if missing or unexpected or wrong:
        problems = []
        if wrong:
            shapes = ", ".join(f"{key} {tuple(stored[key].shape)} vs {tuple(own[key].shape)}" for key in wrong)
            problems.append(f"layers whose shapes differ (file vs model): {shapes}")
        if missing:
            problems.append(f"layers the file lacks: {', '.join(missing)}")
        if unexpected:
            problems.append(f"layers the model lacks: {', '.join(unexpected)}")
        raise ValueError(
            f"model.weights={path} does not fit this model: {'; '.join(problems)}. Only the head ({head}) may "
            "differ (another class count); check model.depth/width or the file."
        )
    own.update({key: value for key, value in stored.items() if key not in reinitialised})
    model.load_state_dict(own)
    if reinitialised:
        log.info("model    weights from %s; head %s re-initialised (%s)", path, head, ", ".join(reinitialised))
    return reinitialised
