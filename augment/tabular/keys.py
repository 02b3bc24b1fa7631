"""Fresh ids for generated rows: an id column is never learned, new rows get new keys.

A key copied from a real row would make a synthetic row point at a real customer, and a key
made up by the GAN would collide with one. So an ``id`` column (inferred or declared, see
:mod:`augment.tabular.roles`) is left out of the model, and every generated row gets a value
of the same form that no real row has:

- integers (``int64``, ``Int64``, whole floats): counting up from the largest real id + 1;
- codes, a fixed prefix and digits (``C000123``, ``INV-0042``): the same prefix, numbers
  counting up from the largest real one + 1, zero-padded to the real width (wider only once
  the numbers outgrow it);
- UUIDs: random version-4 UUIDs from the seeded generator, in the real ones' case and hyphen
  style (a collision with a real UUID has a chance of about 2**-122 per pair);
- other strings: ``<prefix><n>`` with a prefix no real value starts with.

The values keep the column's dtype (``int64``, ``Int64``, ``object``, ``string``). Numbering
is a caller's counter (``first``): a job numbers the rows of all its shards in one sequence,
so ids are unique across the whole run::

    ids = IdColumns.fit(train[["customer_id"]])
    rows = ids.fill(rows, first=0, rng=rng)     # customer_id: C000900, C000901, ...

Only the form is kept (prefix, width, the next number), never the real ids themselves.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from augment.tabular.steps import ColumnSteps

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_CODE = re.compile(r"^(.*?)(\d+)$")  # the longest run of digits at the end


@dataclass
class IdColumn:
    dtype: str
    form: str  # "integer" | "code" | "uuid" | "string"
    prefix: str = ""
    width: int = 0  # digits of a code, zero-padded (0: not padded)
    next: int = 0  # the first fresh number: above every real one
    upper: bool = False  # a UUID's hex digits in upper case
    hyphens: bool = True  # a UUID written with hyphens

    @classmethod
    def fit(cls, series: pd.Series) -> IdColumn:
        dtype = str(series.dtype)
        present = series.dropna()
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = present.to_numpy(dtype=np.float64)
            top = int(values.max()) if len(values) else -1
            return cls(dtype, "integer", next=top + 1)
        text = present.astype(str)
        if len(text) and text.str.fullmatch(_UUID).all():
            return cls(
                dtype,
                "uuid",
                upper=bool(text.str.contains("[A-F]").any()),
                hyphens=bool(text.str.contains("-").all()),
            )
        parts = text.str.extract(_CODE)
        if len(text) and parts[1].notna().all() and parts[0].nunique() == 1:
            widths = parts[1].str.len()
            return cls(
                dtype,
                "code",
                prefix=str(parts[0].iloc[0]),
                width=int(widths.iloc[0]) if widths.nunique() == 1 else 0,
                next=max(int(digits) for digits in parts[1]) + 1,  # any length: Python ints
            )
        # anything else: a prefix that no real value starts with, then a count
        prefix = "new-"
        while len(text) and text.str.startswith(prefix).any():
            prefix = "new" + prefix
        return cls(dtype, "string", prefix=prefix)

    def fresh(self, first: int, n: int, rng: np.random.Generator) -> Any:
        """``n`` new ids, the ``first``-th fresh one on, as a Series of the column's dtype."""
        numbers = range(self.next + first, self.next + first + n)
        if self.form == "integer":
            return pd.Series(np.asarray(numbers, dtype=np.int64), dtype=_dtype(self.dtype))
        if self.form == "code":
            values = [f"{self.prefix}{k:0{self.width}d}" for k in numbers]
        elif self.form == "uuid":
            values = [self._uuid(rng) for _ in range(n)]
        else:
            values = [f"{self.prefix}{k}" for k in numbers]
        # a Series of the dtype itself: an object array would become pandas' "str" dtype
        return pd.Series(np.asarray(values, dtype=object), dtype=_dtype(self.dtype))

    def _uuid(self, rng: np.random.Generator) -> str:
        text = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        text = text if self.hyphens else text.replace("-", "")
        return text.upper() if self.upper else text


class IdColumns(ColumnSteps[IdColumn]):
    """The id columns of a table and the form of their fresh values."""

    record = IdColumn

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> IdColumns:
        return cls({str(name): IdColumn.fit(frame[name]) for name in frame.columns})

    def fill(self, frame: pd.DataFrame, first: int, rng: np.random.Generator) -> pd.DataFrame:
        """``frame`` with every id column set to fresh ids, the ``first``-th one on."""
        for name, column in self.columns.items():
            frame[name] = column.fresh(first, len(frame), rng).set_axis(frame.index)
        return frame


def _dtype(name: str) -> Any:
    return pd.api.types.pandas_dtype(name)
