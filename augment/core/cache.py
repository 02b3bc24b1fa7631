"""Reuse a trained generator when a job is run again on the same data with the same settings.

The key has two halves:

- a **content digest of the training data as loaded**: for tables, pandas' row hashes of the
  train split (values, index and dtypes) plus the inferred schema; for images, the raw pixel
  bytes (with shape and dtype) plus the labels. Renaming or moving the source file still hits;
  changing one cell, the holdout fraction, the imbalance ratio or the seed (which all change the
  train split) misses;
- the **training settings** of the config (:meth:`augment.core.config.JobConfig.training_settings`:
  the model and train sections without progress bars, resume, checkpoint interval or threads)
  and the units of work (which classes get a GAN).

Why a library-level cache rather than a Prefect cache policy: it works the same for
``augment run`` without Prefect and for the flow; the key is made of what matters to the model
(a Prefect ``INPUTS`` policy would hash the task arguments, which hold an MLflow client and the
output lock, and miss whenever the output folder changes); and the cached value is our safe
synthesizer file (tensors and plain data, loaded with ``weights_only``), not a pickle in Prefect's
result storage.

Layout: ``<cache dir>/<key>/synthesizer.pt`` and ``meta.json`` (job, data digest, settings,
time). An entry is written to a temporary folder and renamed into place, so a crash never leaves
half an entry; a corrupt entry is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
CACHE_DIR_NAME = ".augment-cache"
ENTRY_FILE = "synthesizer.pt"
META_FILE = "meta.json"


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a table's content: column names and dtypes, index, and every value."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    rows = pd.util.hash_pandas_object(frame, index=True, categorize=True)  # (N,) uint64
    digest.update(rows.to_numpy(dtype=np.uint64).tobytes())
    return digest.hexdigest()


def images_digest(images: np.ndarray, labels: Sequence[Any]) -> str:
    """A digest of an image set: shape, dtype and pixel bytes, plus the labels in order."""
    digest = hashlib.sha256()
    pixels = np.ascontiguousarray(images)
    digest.update(json.dumps([list(pixels.shape), str(pixels.dtype)]).encode())
    digest.update(pixels.reshape(-1).view(np.uint8))  # the bytes of tobytes(), not a copy
    digest.update(json.dumps([str(label) for label in labels]).encode())
    return digest.hexdigest()


def cache_key(data_digest: str, settings: dict[str, Any], units: Sequence[Sequence[Any]]) -> str:
    """The cache key: data digest + training settings + units of work."""
    blob = json.dumps(
        {
            "data": data_digest,
            "settings": settings,
            "units": [[str(c) for c in unit] for unit in units],
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def default_cache_dir(output: str | Path) -> Path:
    """``.augment-cache`` beside the output folder: ``runs/x`` -> ``runs/.augment-cache``."""
    return Path(output).expanduser().resolve().parent / CACHE_DIR_NAME


class SynthesizerCache:
    """A folder of fitted synthesizer files, one sub-folder per cache key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / key / ENTRY_FILE

    def get(self, key: str) -> Path | None:
        """The cached synthesizer file for ``key``, or None on a miss."""
        entry = self.path(key)
        return entry if entry.is_file() and (entry.parent / META_FILE).is_file() else None

    def put(self, key: str, synthesizer_file: Path, meta: dict[str, Any]) -> Path:
        """Copy a saved synthesizer into the cache (atomically: a temporary folder, renamed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; entries are as shareable as runs
            shutil.copyfile(synthesizer_file, staging / ENTRY_FILE)
            (staging / META_FILE).write_text(
                json.dumps({**meta, "key": key, "created": time.time()}, indent=2, default=str)
            )
            target = self.root / key
            if target.exists():  # a corrupt or concurrent entry: the new one replaces it
                shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        except OSError as error:
            # A cache that cannot be written costs a retrain next time, never the job.
            log.warning("could not store the trained model in the cache %s: %s", self.root, error)
            shutil.rmtree(staging, ignore_errors=True)
        return self.path(key)

    def drop(self, key: str) -> None:
        shutil.rmtree(self.root / key, ignore_errors=True)
