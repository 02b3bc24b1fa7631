"""The shared shape of a per-column step between the user's rows and the model's.

Each step (datetimes, date strings, wide categories, ids; :mod:`augment.tabular.form`) keeps one
fitted record per column it touches, a plain dataclass, and saves them with the model as plain
dicts (no pickle). This base holds that bookkeeping once; a step adds ``fit`` and its moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

Record = TypeVar("Record")


@dataclass
class ColumnSteps(Generic[Record]):
    """``columns``: column name -> the step's fitted record of it; empty when the step does not
    apply to the table (then it is falsy and the form skips it)."""

    columns: dict[str, Record] = field(default_factory=dict)
    record: ClassVar[type] = dict  # the per-column dataclass, set by each step

    def __bool__(self) -> bool:
        return bool(self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {name: vars(column) for name, column in self.columns.items()}

    @classmethod
    def from_dict(cls, state: dict[str, Any] | None) -> Self:
        return cls({name: cls.record(**values) for name, values in (state or {}).items()})
