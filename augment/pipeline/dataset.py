"""A torch ``Dataset`` over a finished run: train on real + synthetic rows or images directly.

    from torch.utils.data import DataLoader
    from augment import ShardDataset

    data = ShardDataset("runs/digits", include_real=True, transform=A.HorizontalFlip(p=0.5))
    loader = DataLoader(data, batch_size=64, shuffle=True)   # (B, C, H, W) float, (B,) int64

Items are ``(x, y)``: ``x`` a float tensor (images ``(C, H, W)`` in ``[0, 1]``; tables the
``(F,)`` encoded feature columns), ``y`` the class index into :attr:`ShardDataset.classes`.
The real training data of the run comes first, then the synthetic items in shard order.

What the pipeline does here is the same for every kind: the manifest (a finished run only), the
run's config and the real data its modality loads (checked against the split the run recorded),
the classes and labels. What an item *is* belongs to the kind: ``<kind package>/dataset.py``
(``augment/tabular/dataset.py``, ``augment/image/dataset.py``) builds the items with
``shard_items(output, manifest, real, features=...)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset

from augment.core import storage
from augment.core.balance import to_python
from augment.core.config import STACK_SHARE, JobConfig
from augment.core.context import JobContext
from augment.core.errors import DataError
from augment.core.modality import Modality
from augment.core.shards import JOB_YAML, MANIFEST, SUCCESS, read_manifest
from augment.core.storage import Location
from augment.pipeline.config import load_config, parse_config
from augment.pipeline.registry import modality

SPLIT_FILE = "holdout_ids.json"  # written by pipeline.job.load_data: the rows of each split


class ShardDataset(Dataset):
    """The items of a finished run: its synthetic rows (images), optionally with the real ones.

    Args:
        run_dir: the output folder of a finished run (``output.path``; a local folder or an
            fsspec URL), the one holding ``manifest.json`` and ``_SUCCESS``.
        include_real: also yield the real training data the run balanced (the train split,
            holdout excluded, after ``data.imbalance_ratio``), read again from the run's source
            with the project's loaders. It needs the run's config: ``config``, or the config
            file kept in the run folder.
        transform: applied to each item's features. Images: an albumentations transform
            (``A.Compose``, ``A.HorizontalFlip`` ...) gets the ``(H, W, C)`` uint8 array
            (``transform(image=...)["image"]``) and its result is converted to a tensor (uint8
            scaled to ``[0, 1]``, floats kept, a tensor from ``ToTensorV2`` returned as it is);
            any other callable (torchvision style) gets the ``(C, H, W)`` float tensor in
            ``[0, 1]``. Tables: a callable on the ``(F,)`` float32 tensor.
        target_transform: applied to the class index.
        config: the run's job config when ``include_real`` is set and the run folder holds none:
            a YAML path, or a :class:`~augment.JobConfig` (``augment.load_config(path,
            overrides)`` when the run's ``--set`` overrides changed the data or the split).
        features: tables only: the feature columns, in order (default: every column but the
            label, the ids and the ignored columns). Each is encoded as the run's classifiers
            scored it (``augment/tabular/dataset.py``): numbers as they are (float32, no
            scaling), gaps as the training median plus a 0/1 ``<column>__missing`` entry,
            datetimes as seconds, text and category columns one-hot over the categories the
            run's model was trained on (see :attr:`feature_names`, e.g. ``"channel=web"``).
        storage_options: passed to fsspec when ``run_dir`` is a URL.

    Attributes:
        classes: the class labels in index order (as in the manifest), with their data type.
        targets: ``(N,)`` int64 class index of every item.
        synthetic_mask: ``(N,)`` bool, True for synthetic items (real items come first).
        manifest: the run's manifest. ``kind``: ``"tabular"`` or ``"image"``.
        items: the kind's items; its attributes are the dataset's too: tables ``frame`` (the
            rows, every column, real first; in memory) and ``feature_names``, images
            ``image_shape``. Synthetic images are decoded one item at a time (their PNG bytes
            stay in memory); real images are held decoded, as the job's loader reads them.

    Raises:
        DataError: ``run_dir`` is not a finished run, a shard does not match the manifest, the
            run's config is missing for ``include_real``, or the real data loaded is not the
            data the run trained on (its split differs from ``holdout_ids.json``).
    """

    def __init__(
        self,
        run_dir: str | Path | Location,
        include_real: bool = False,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        *,
        config: str | Path | JobConfig | None = None,
        features: Sequence[str] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.output = storage.location(run_dir, storage_options)
        self.manifest = _finished_manifest(self.output)
        self.kind = self.manifest["kind"]
        self.transform = transform
        self.target_transform = target_transform
        kind = modality(self.kind)
        real = None
        if include_real:
            real = _real_data(kind, self.output, self.manifest, config)
        options = {} if features is None else {"features": list(features)}
        self.items = kind.shard_items(self.output, self.manifest, real, **options)
        values = self.items.labels  # (N,) class value of each item
        self.classes = _typed_classes(list(self.manifest["counts_before"]), values)
        index = {cls: i for i, cls in enumerate(self.classes)}
        unknown = sorted({str(v) for v in values if v not in index})
        if unknown:
            raise DataError(
                f"{storage.describe(self.output)} holds items of classes {unknown} that its "
                "manifest does not list; "
                "the run folder was changed after the run: rerun the job"
            )
        self.targets = np.array([index[v] for v in values], dtype=np.int64)
        self.synthetic_mask = np.asarray(self.items.synthetic_mask, dtype=bool)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x = self.items.item(int(index), self.transform)
        y = int(self.targets[index])
        return x, self.target_transform(y) if self.target_transform else y

    def __getattr__(self, name: str) -> Any:
        # The kind's own attributes (frame, feature_names, image_shape). Looked up in __dict__:
        # an unpickled copy (a DataLoader worker) asks before its attributes are restored.
        items = self.__dict__.get("items")
        if items is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(items, name)

    def stacking_weights(self, share: float = STACK_SHARE) -> torch.Tensor:
        """Per-item weights for a ``WeightedRandomSampler`` that trains the way the validation's
        stacked arm does: in expectation, each class gets its real items plus ``share`` of its
        synthetic ones, and draws of its real items in place of the rest.

        With augmentation on the fly a draw of a real item is a fresh move of it, so a real item
        drawn twice is two different images. Measured on the image benchmark: with the whole
        top-up synthetic, stacking lost to classic augmentation alone; half real, half synthetic
        (the default) did better (``benchmarks/NOTES.md``). The weights sum to ``len(self)``::

            weights = data.stacking_weights()
            sampler = WeightedRandomSampler(weights, num_samples=len(data))
            loader = DataLoader(data, batch_size=128, sampler=sampler)

        Args:
            share: in ``(0, 1]``; 1 weighs every item the same (plain shuffling).

        Returns:
            ``(N,)`` float64 tensor of item weights.

        Raises:
            DataError: ``share`` outside ``(0, 1]``, or below 1 without the real items
                (``include_real=True``) for a class that has synthetic ones.
        """
        if not 0 < share <= 1:
            raise DataError(f"the synthetic share must be in (0, 1]; got {share}")
        weights = np.ones(len(self.targets))
        for index in np.unique(self.targets[self.synthetic_mask]):
            fake = self.synthetic_mask & (self.targets == index)
            real = ~self.synthetic_mask & (self.targets == index)
            if share < 1 and not real.any():
                raise DataError(
                    f"class {self.classes[index]!r} has synthetic items but no real one to "
                    "draw in their place; build the dataset with include_real=True"
                )
            moved = (1 - share) * fake.sum()  # the synthetic mass the real items take over
            weights[fake] = share
            weights[real] = 1 + moved / max(real.sum(), 1)
        return torch.as_tensor(weights, dtype=torch.float64)

    def __repr__(self) -> str:
        real = int((~self.synthetic_mask).sum())
        return (
            f"ShardDataset({storage.describe(self.output)!r}, kind={self.kind!r}, "
            f"items={len(self)}, real={real}, synthetic={len(self) - real}, "
            f"classes={self.classes!r})"
        )


def _finished_manifest(output: Location) -> dict[str, Any]:
    """The manifest of the finished run at ``output``; a one-line DataError otherwise."""
    where = storage.describe(output)
    if not output.exists():
        raise DataError(
            f"{where} does not exist; pass the output folder of a finished augment run "
            "(its output.path, the folder with manifest.json)"
        )
    if not (output / SUCCESS).exists() and not (output / MANIFEST).exists():
        raise DataError(
            f"{where} is not a finished augment run (it has no {MANIFEST}); pass the output "
            "folder of a run that finished, or run the job (augment run CONFIG) to make one"
        )
    return read_manifest(output)  # a manifest without _SUCCESS: the run did not finish


def _run_config(output: Location, manifest: dict[str, Any], config: Any) -> JobConfig:
    """The job config of the run: ``config`` if given, else the one kept in the run folder."""
    if isinstance(config, JobConfig):
        cfg = config
    elif config is not None:
        cfg = load_config(config)
    else:
        kept = output / JOB_YAML  # the resolved config every run writes
        if not kept.exists():
            raise DataError(
                f"{storage.describe(output)} keeps no config of its run, which include_real=True "
                "needs to read the real data: pass config= the job YAML the run used "
                "(augment.load_config(path, overrides) if it ran with --set overrides)"
            )
        cfg = parse_config(yaml.safe_load(kept.read_text()) or {}, origin=str(kept))
    if cfg.data.kind != manifest["kind"]:
        raise DataError(
            f"the config is of a {cfg.data.kind} job but {storage.describe(output)} holds a "
            f"{manifest['kind']} run; pass the config that run used"
        )
    return cfg


def _real_data(kind: Modality, output: Location, manifest: dict[str, Any], config: Any) -> Any:
    """The run's real data as its modality loads it (train split, holdout and plan), checked to
    be split exactly as the run recorded: same source, same rows, same settings."""
    cfg = _run_config(output, manifest, config)
    ctx = JobContext(config=cfg, output=output, fingerprint=cfg.fingerprint(), tracker=None)
    data = kind.load(ctx)
    recorded = json.loads((output / SPLIT_FILE).read_text())
    if json.loads(json.dumps(data.split_ids, default=str)) != recorded:
        raise DataError(
            f"the real data read from {cfg.data.source} is not the data the run in "
            f"{storage.describe(output)} trained on (its train/holdout split differs from "
            f"{SPLIT_FILE}); pass the config the run used, with its --set overrides, and keep "
            "its source unchanged"
        )
    return data


def _typed_classes(keys: list[str], values: Sequence[Any]) -> list[Any]:
    """The manifest's class keys (JSON strings) as values of the labels' type (int, float, bool
    or str): a class with no item here gets the same type as the others."""
    sample = next((to_python(v) for v in values), None)
    if isinstance(sample, bool):
        return [key == "True" for key in keys]
    if isinstance(sample, int | float):
        return [type(sample)(key) for key in keys]
    return keys


__all__ = ["ShardDataset"]
