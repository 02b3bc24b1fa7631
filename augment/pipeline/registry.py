"""The kinds of data augment knows, keyed by ``data.kind``: the one module that names the wings.

Adding a kind (say time series) is a folder ``augment/<kind>/`` with a config, a synthesizer and a
:class:`~augment.core.modality.Modality`, plus one entry below; nothing else in the pipeline, the
CLI or the flows changes. See docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.core.errors import ConfigError
from augment.core.modality import Modality
from augment.core.persist import load_payload
from augment.image.modality import ImageModality
from augment.tabular.modality import TabularModality

MODALITIES: dict[str, Modality] = {m.kind: m for m in (TabularModality(), ImageModality())}


def modality(kind: str) -> Modality:
    """The modality of ``data.kind``."""
    try:
        return MODALITIES[kind]
    except KeyError:
        raise ConfigError(
            f"data.kind: {kind!r} is not a kind of data augment knows; use one of {list(MODALITIES)}"
        ) from None


def load_synthesizer(path: str | Path, device: str = "cpu") -> Any:
    """Load a saved synthesizer of any kind onto ``device`` (``cpu`` loads GPU-trained ones).

    Returns the kind's synthesizer (tables: ``augment.tabular.synthesizer.Synthesizer``, images:
    ``augment.image.synthesizer.ImageSynthesizer``), as the file's format says.

    Raises:
        ModelFileError: the file is missing, damaged, or not a synthesizer file.
    """
    by_format = {m.synthesizer_format: m for m in MODALITIES.values()}
    payload = load_payload(path, tuple(by_format))
    return by_format[payload["format"]].synthesizer_from_payload(payload, device)
