"""The items of an image run for :class:`augment.ShardDataset` (``augment/pipeline/dataset.py``).

An item is one image as a float tensor ``(C, H, W)`` in ``[0, 1]`` (torchvision's ``ToTensor``
layout), after the dataset's transform. Synthetic images are decoded when their item is read:
only their PNG bytes, as the shards hold them, stay in memory. Real images come decoded from the
job's loader: the train images the models were fitted on (the whole train split, or its
``data.max_images`` sample).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from augment.core.balance import to_python
from augment.core.shards import read_shards
from augment.core.storage import Location
from augment.image.shards import decode_png

if TYPE_CHECKING:  # the modality imports this module when asked for items
    from augment.image.modality import ImageData

IMAGE_COLUMN = "image"


class ImageItems:
    """The real training images of a run (optional), then its synthetic ones in shard order.

    Attributes:
        labels: ``(N,)`` class value of each item (plain Python values).
        synthetic_mask: ``(N,)`` bool, True for synthetic items.
        image_shape: ``(H, W, C)`` of every image.
    """

    def __init__(self, output: Location, manifest: dict[str, Any], real: ImageData | None) -> None:
        label = manifest["label"]
        self.image_shape = tuple(manifest["image_shape"])
        shards = read_shards(output, columns=[IMAGE_COLUMN, label])  # sha256 checked per part
        self._real = (
            real.train_images if real is not None else np.zeros((0, *self.image_shape), np.uint8)
        )  # (R, H, W, C) uint8
        self._png = (
            shards[IMAGE_COLUMN].to_numpy(dtype=object) if len(shards) else np.empty(0, object)
        )  # (S,) PNG bytes
        real_labels = real.train_labels.tolist() if real is not None else []
        synthetic_labels = shards[label].tolist() if len(shards) else []
        self.labels = np.array([to_python(v) for v in real_labels + synthetic_labels], dtype=object)
        self.synthetic_mask = np.arange(len(self.labels)) >= len(self._real)

    def __len__(self) -> int:
        return len(self.labels)

    def pixels(self, index: int) -> np.ndarray:
        """Item ``index`` as a uint8 ``(H, W, C)`` array of its own (transforms may change it)."""
        if index < 0:
            index += len(self)
        if index < len(self._real):
            return self._real[index].copy()
        return decode_png(self._png[index - len(self._real)]).copy()  # Pillow's is read-only

    def item(self, index: int, transform: Callable[..., Any] | None) -> torch.Tensor:
        pixels = self.pixels(index)
        if transform is not None and is_albumentations(transform):
            out = transform(image=pixels)["image"]
            return out if isinstance(out, torch.Tensor) else to_tensor(out)  # ToTensorV2: as is
        tensor = to_tensor(pixels)
        return transform(tensor) if transform is not None else tensor


def is_albumentations(transform: Any) -> bool:
    """True for an albumentations transform or pipeline (called with ``image=``, returns a dict).

    An albumentations object exists only once the user imported albumentations, so the check
    costs no import.
    """
    albumentations = sys.modules.get("albumentations")
    return albumentations is not None and isinstance(
        transform, albumentations.BasicTransform | albumentations.BaseCompose
    )


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` array -> float ``(C, H, W)``: uint8 scaled to ``[0, 1]``, floats kept (the
    result of ``A.Normalize`` or ``A.ToFloat``)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if not pixels.flags.writeable:  # torch wants memory it may write
        pixels = pixels.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).contiguous()
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()


def shard_items(
    output: Location,
    manifest: dict[str, Any],
    real: ImageData | None,
    features: list[str] | None = None,
) -> ImageItems:
    """The items of the image run at ``output`` (see :class:`ImageItems`)."""
    if features is not None:
        raise ValueError(
            "features= selects the columns of a table run; this is an image run: leave it out"
        )
    return ImageItems(output, manifest, real)
