"""What happens to a batch of images on the training device: `uint8 → float` in [0, 1], augmentation
(training split only, batched with `kornia.augmentation`), then per-channel normalisation with the dataset's
`mean` / `std`.

Images stay `uint8` in memory and in the loaders (a float32 copy of CUB at 224 px would be ~7 GB); the
conversion costs one pass on the device. Augmentation is configured as `dataset.augment`, a list of names or
`{name: {parameter: value}}` ([AUGMENTATIONS][lossforge.data.device.AUGMENTATIONS]); its random draws come from torch's
generator, which the run seed seeds (docs/decisions.md §1: augmentation draws vary with `seed`). In eval mode
(validation, test) nothing is augmented.

```pycon
>>> import torch
>>> pipeline = InputPipeline(mean=(0.5,), std=(0.25,), augment=["horizontal_flip"], image_shape=(1, 4, 4))
>>> pipeline.eval()(torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)).unique().tolist()
[2.0]

```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lossforge.contract import did_you_mean


def _kornia() -> Any:
    import kornia.augmentation as augmentation  # deferred: only image runs with dataset.augment pay its import

    return augmentation


def _random_resized_crop(image_shape: Sequence[int], **options: Any) -> nn.Module:
    options.setdefault("scale", (0.5, 1.0))
    return _kornia().RandomResizedCrop(size=(int(image_shape[1]), int(image_shape[2])), **options)


AUGMENTATIONS: dict[str, Callable[..., nn.Module]] = {
    "random_resized_crop": _random_resized_crop,  # scale (0.5, 1.0) by default, back to the input size
    "horizontal_flip": lambda image_shape, **options: _kornia().RandomHorizontalFlip(**options),
    "vertical_flip": lambda image_shape, **options: _kornia().RandomVerticalFlip(**options),
    "color_jitter": lambda image_shape, **options: _kornia().ColorJitter(
        **{"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.05, "p": 0.8, **options}
    ),
    "grayscale": lambda image_shape, **options: _kornia().RandomGrayscale(**{"p": 0.2, **options}),
    "rotation": lambda image_shape, **options: _kornia().RandomRotation(**{"degrees": 15.0, **options}),
}
"""`dataset.augment` names → a builder `(image_shape, **options) -> nn.Module` (kornia's defaults, except
where a comment says otherwise)."""


def build_augmentation(specs: Sequence[Any], image_shape: Sequence[int]) -> nn.Module:
    """The augmentations `specs` names, applied in order, for images of `image_shape` `(C, H, W)`.

    ```pycon
    >>> build_augmentation(["horizontal_flp"], (3, 8, 8))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: dataset.augment: unknown augmentation 'horizontal_flp'. Did you mean 'horizontal_flip'? ...

    ```
    """
    if len(image_shape) != 3:
        raise ValueError(
            f"dataset.augment augments images of shape (C, H, W), but the samples have shape {tuple(image_shape)}; "
            "drop dataset.augment for this dataset"
        )
    layers = []
    for spec in specs:
        options: dict[str, Any] = {}
        if isinstance(spec, str):
            name = spec
        elif isinstance(spec, Mapping) and len(spec) == 1:
            name, options = next(iter(spec.items()))
            options = dict(options or {})
        else:
            raise ValueError(f"dataset.augment: expected a name or {{name: {{option: value}}}}, got {spec!r}")
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"dataset.augment: unknown augmentation {name!r}.{did_you_mean(name, AUGMENTATIONS, n=1)} "
                f"Available: {', '.join(AUGMENTATIONS)}."
            )
        try:
            layers.append(AUGMENTATIONS[name](image_shape, **options))
        except TypeError as error:
            raise ValueError(f"dataset.augment: {name} with {options}: {error}") from None
    return nn.Sequential(*layers)


class InputPipeline(nn.Module):
    """`uint8` images → float in [0, 1] → augmentation (training mode only) → `(x - mean) / std`.

    Args:
        mean: per-channel mean (`()`: none), in the [0, 1] scale.
        std: per-channel standard deviation, as `mean`.
        augment: `dataset.augment` specs (`()`: none).
        image_shape: one sample's shape `(C, H, W)`.

    Shape:
        `(N, C, H, W)` uint8 or float → `(N, C, H, W)` float32
    """

    def __init__(
        self,
        *,
        mean: Sequence[float] = (),
        std: Sequence[float] = (),
        augment: Sequence[Any] = (),
        image_shape: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.augment = build_augmentation(augment, image_shape) if augment else None
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        if images.dtype == torch.uint8:
            images = images.float() / 255.0  # (N, C, H, W) in [0, 1]
        if self.training and self.augment is not None:
            images = self.augment(images)  # (N, C, H, W), new random draws per batch
        if self.mean.numel():
            images = (images - self.mean) / self.std
        return images


def input_pipeline(
    *,
    dtype: torch.dtype,
    input_shape: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    augment: Sequence[Any],
) -> InputPipeline | None:
    """The pipeline a dataset needs, or `None` for float features without augmentation or normalisation."""
    if dtype != torch.uint8 and not mean and not augment:
        return None
    return InputPipeline(mean=mean, std=std, augment=augment, image_shape=input_shape)
