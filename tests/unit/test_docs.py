"""The docs stay true: the configuration reference matches the models, the README stays short,
and links resolve. (The layers of docs/architecture.md are checked by lint-imports in make lint.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.config_reference import TARGET, render

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "NOTES.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_configuration_reference_matches_the_models():
    assert TARGET.read_text() == render(), "run: python -m tools.config_reference"


def test_configuration_reference_names_every_key_of_every_kind():
    from augment.pipeline.registry import MODALITIES

    text = TARGET.read_text()
    for modality in MODALITIES.values():
        for section, info in modality.config.model_fields.items():
            model = info.annotation
            if isinstance(model, type) and hasattr(model, "model_fields"):
                for key, field in model.model_fields.items():
                    assert f"`{field.alias or key}`" in text, f"{section}.{key}"


def test_readme_is_short():
    assert len((ROOT / "README.md").read_bytes()) <= 12_000


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
