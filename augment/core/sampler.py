"""The imbalanced-learn sampler shell that both samplers share.

It follows imbalanced-learn's template: ``fit_resample`` validates, computes
``sampling_strategy_`` with imbalanced-learn's own semantics and calls ``_fit_resample``, which
here draws the seed, plans every class, fits one GAN per unit of work, samples exactly the plan
and hands back the caller's container with the new rows after the real ones. A kind fills in the
hooks: ``_prepare`` (its view of X and y), ``_fit_unit``, ``_assemble``, ``_sample`` and
``_combine``. ``save`` / ``load`` write and read the synthesizer's safe file with the sampler's
params and fitted attributes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from augment.core.balance import class_counts, refuse_single_rows, to_python
from augment.core.device import cpu_threads
from augment.core.errors import DataError
from augment.core.persist import load_payload
from augment.core.synthesizer import training_units

#: the parameters of every GAN sampler, declared once (imbalanced-learn checks them at fit)
COMMON_CONSTRAINTS: dict = {
    **BaseOverSampler._parameter_constraints,
    "mode": [StrOptions({"conditional", "per_class"})],
    "steps": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "critic_steps": [Interval(Integral, 1, None, closed="left")],
    "noise_dim": [Interval(Integral, 1, None, closed="left")],
    "ema_decay": [Interval(Real, 0, 1, closed="left")],
    "device": [StrOptions({"auto", "cpu", "cuda"})],
    "precision": [StrOptions({"auto", "fp32", "bf16"})],
    "random_state": ["random_state"],
    "progress": ["boolean"],
    "cpu_threads": [Interval(Integral, 1, None, closed="left"), None],
}


def _refuse_missing_labels(y: Any) -> None:
    """A clear error for a missing value in ``y`` (None, NaN, pd.NA), where scikit-learn would
    say "Unknown label type: unknown": how many there are and the first one's row.

    Raises:
        DataError: ``y`` holds a missing label.
    """
    values = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y, dtype=object)
    if values.ndim != 1:  # not a label vector: imbalanced-learn's own check says what is wrong
        return
    missing = np.flatnonzero(pd.isna(values))
    if len(missing) == 0:
        return
    first = int(missing[0])
    where = f"row {first}"
    if isinstance(y, pd.Series) and not y.index.equals(pd.RangeIndex(len(y))):
        where += f" (index {y.index[first]!r})"
    raise DataError(
        f"y has {len(missing):,} missing label(s) (None or NaN) out of {len(values):,}, the "
        f"first at {where}: every row needs its class. Leave those rows out of X and y first, "
        "e.g. keep = pd.notna(y); X, y = X[keep], y[keep]"
    )


class GANSampler(BaseOverSampler):
    """Base of ``GANOverSampler`` and ``ImageGANOverSampler``; not used on its own."""

    _FORMAT: str  # the synthesizer file format that load accepts
    _SAVED: dict[str, Any]  # e.g. {"input_kind": "dataframe"} saves and restores input_kind_

    def _store_params(self, given: dict[str, Any]) -> None:
        """Keep every ``__init__`` argument as an attribute of the same name, as scikit-learn
        asks (no logic in ``__init__``; imbalanced-learn checks them at fit against
        ``_parameter_constraints``). A subclass's ``__init__`` calls it with ``locals()``."""
        for name in self._get_param_names():
            setattr(self, name, given[name])

    # -- the hooks of a kind -----------------------------------------------------------------
    def _prepare(self, X, y) -> tuple[Any, list[Any]]:
        """The kind's view of the input for fitting, and the sorted classes."""
        raise NotImplementedError

    def _fit_unit(self, prepared: Any, classes: list[Any], seed: int) -> Any:
        raise NotImplementedError

    def _before_fit(self, prepared: Any, classes: list[Any], plan: dict[Any, int], seed: int):
        """Decide, from the training data only, anything the fit depends on (tables:
        ``generator="auto"`` picks its generator here). Called once per fit, before the units."""

    def _needs_model(self) -> bool:
        """False when the kind's settings generate without a trained model (no unit is fit)."""
        return True

    def _assemble(self, models: list[Any], prepared: Any, classes: list[Any]) -> Any:
        raise NotImplementedError

    def _sample(self, plan: Mapping[Any, int], seed: int) -> tuple[Any, np.ndarray]:
        """Exactly ``plan[c]`` new items per class, as ``(X_new, y_new)`` in the input's form."""
        raise NotImplementedError

    def _combine(self, X, y, new_x, new_y):
        raise NotImplementedError

    @staticmethod
    def _synthesizer_from_payload(payload: dict[str, Any], device: str) -> Any:
        raise NotImplementedError

    # -- the shell ---------------------------------------------------------------------------
    def _fit_resample(self, X, y):
        with cpu_threads(self.cpu_threads):
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            prepared, classes = self._prepare(X, y)
            self.classes_ = _class_array(classes)  # as a scikit-learn classifier's classes_
            plan = {c: 0 for c in classes}
            plan.update({to_python(c): int(n) for c, n in self.sampling_strategy_.items()})
            refuse_single_rows(class_counts(y), plan, where="in y", strategy="sampling_strategy")
            self._before_fit(prepared, classes, plan, seed)
            models = [
                self._fit_unit(prepared, unit, seed)
                for unit in training_units(classes, plan, self.mode)
                if self._needs_model()
            ]
            self.seed_ = seed  # before _assemble: a kind may fit more there
            self.synthesizer_ = self._assemble(models, prepared, classes)
            new_x, new_y = self._sample({c: n for c, n in plan.items() if n}, seed)
            found = new_y.tolist()
            self.n_generated_ = {c: found.count(c) for c in plan}
            return self._combine(X, y, new_x, new_y)

    def fit_resample(self, X, y, **params):
        _refuse_missing_labels(y)
        # sample() hands the new items back in the containers fit_resample does: imbalanced-learn
        # gives X and y back as they came (a list as a list, y as a Series of its name and dtype)
        self.containers_ = {"X": _container(X), "y": _container(y)}
        return super().fit_resample(X, y, **params)

    def sample(self, n_per_class: Mapping[Any, int], seed: int | None = None):
        """Generate exactly ``n_per_class[c]`` new items per class (no real ones): ``(X, y)``,
        in the containers :meth:`fit_resample` returned for the fitted input (a DataFrame and a
        Series for a DataFrame and a Series; arrays for arrays).

        Raises:
            DataError: a class the sampler cannot generate (it names those it can), or a count
                that is not a whole number of 0 or more.
        """
        self._require_fitted()
        known = self._sampleable_classes()
        plan = {}
        for cls, n in n_per_class.items():
            value = to_python(cls)
            if value not in known:
                raise DataError(
                    f"sample(): {value!r} is not a class this sampler generates; its classes are "
                    f"{known!r} (a class given as text where the labels are numbers, or the "
                    "other way round, is another class)"
                )
            if isinstance(n, bool) or not isinstance(n, Integral | np.integer) or n < 0:
                raise DataError(
                    f"sample(): the count for class {value!r} is {n!r}; give a whole number of "
                    "0 or more"
                )
            plan[value] = int(n)
        new_x, new_y = self._sample(plan, self.seed_ if seed is None else seed)
        containers = getattr(self, "containers_", {})  # none in files saved before 2026-12-08
        return _as_given(new_x, containers.get("X")), _as_given(new_y, containers.get("y"))

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the fitted sampler as a safe file (loads with torch weights_only, on any device)."""
        self._require_fitted()
        self.synthesizer_.save(
            path,
            extra={
                "sampler": type(self).__name__,
                # as given: tuples, lists, integer keys (columns={0: ...}) come back as they were
                "params": {k: _plain_param(k, v) for k, v in self.get_params().items()},
                "params_exact": True,
                "seed": self.seed_,
                **{name: getattr(self, f"{name}_") for name in self._SAVED},
                "containers_": getattr(self, "containers_", {}),
                # the fitted attributes of imbalanced-learn / scikit-learn, class values kept as
                # they are (pairs, since a saved dict's keys would become text)
                "fitted": {
                    "n_features_in_": _plain_or_none(getattr(self, "n_features_in_", None)),
                    "feature_names_in_": (
                        [str(n) for n in self.feature_names_in_]
                        if hasattr(self, "feature_names_in_")
                        else None
                    ),
                    "sampling_strategy_": _pairs(self.sampling_strategy_),
                    "n_generated_": _pairs(getattr(self, "n_generated_", {})),
                    "classes_": [to_python(c) for c in self.classes_],
                },
                **self._saved_state(),
            },
        )

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu"):
        """Load a sampler saved with :meth:`save`; no pickled code is executed."""
        payload = load_payload(path, cls._FORMAT)
        extra = payload.get("extra", {})
        params = extra.get("params", {})
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
        }
        if not extra.get("params_exact"):  # saved before 2026-12-08 as JSON-able values
            params = {
                k: tuple(v) if isinstance(defaults.get(k), tuple) and isinstance(v, list) else v
                for k, v in params.items()
            }
        sampler = cls(
            **{k: _param_value(v) for k, v in params.items() if k in cls._get_param_names()}
        )
        sampler.synthesizer_ = cls._synthesizer_from_payload(payload, device)
        sampler.seed_ = int(extra.get("seed", 0))
        for name, default in cls._SAVED.items():
            setattr(sampler, f"{name}_", type(default)(extra.get(name, default)))
        fitted = extra.get("fitted")  # files saved before 2026-12-07 have none
        if fitted:
            if fitted.get("n_features_in_") is not None:
                sampler.n_features_in_ = int(fitted["n_features_in_"])
            if fitted.get("feature_names_in_") is not None:
                sampler.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
            sampler.sampling_strategy_ = dict(fitted["sampling_strategy_"])
            sampler.n_generated_ = dict(fitted["n_generated_"])
            # files saved before classes_ was kept: n_generated_ names every class, in order
            sampler.classes_ = _class_array(fitted.get("classes_", list(sampler.n_generated_)))
        if extra.get("containers_"):
            sampler.containers_ = extra["containers_"]
        sampler._restore_state(extra)
        return sampler

    def _saved_state(self) -> dict[str, Any]:
        """Fitted state of the kind, besides the synthesizer, that ``save`` stores (plain data)."""
        return {}

    def _restore_state(self, extra: dict[str, Any]) -> None:
        """Rebuild what ``_saved_state`` stored, on a loaded sampler."""

    def _sampleable_classes(self) -> list[Any]:
        """The classes :meth:`sample` can generate (default: those a unit models)."""
        return list(self.synthesizer_.classes)

    def _require_fitted(self) -> None:
        if not hasattr(self, "synthesizer_"):
            raise DataError(
                f"this {type(self).__name__} is not fitted; call fit_resample(X, y) first"
            )


def _container(values: Any) -> dict[str, Any]:
    """What imbalanced-learn's fit_resample gives ``values`` back as: its container type, and a
    Series's name and dtype (a categorical's categories too), as plain data a file keeps."""
    if isinstance(values, list):
        return {"type": "list"}
    if not isinstance(values, pd.Series):
        return {"type": "same"}  # an array, a DataFrame: the kind's _sample keeps it
    dtype = values.dtype
    container = {"type": "series", "name": to_python(values.name), "dtype": str(dtype)}
    if isinstance(dtype, pd.CategoricalDtype):
        container["categories"] = [to_python(c) for c in dtype.categories]
        container["ordered"] = bool(dtype.ordered)
    return container


def _as_given(values: Any, container: dict[str, Any] | None) -> Any:
    """``values`` (an array or a frame) in the container ``container`` describes."""
    kind = (container or {}).get("type")
    if kind == "list":
        return np.asarray(values).tolist()
    if kind != "series":
        return values
    dtype: Any = container["dtype"]
    if "categories" in container:
        dtype = pd.CategoricalDtype(container["categories"], ordered=container["ordered"])
    return pd.Series(values, name=container["name"], dtype=dtype)


def _class_array(classes: Sequence[Any]) -> np.ndarray:
    """The classes as scikit-learn keeps ``classes_``: a NumPy array, of objects when mixed."""
    values = [to_python(c) for c in classes]
    kinds = {type(v) for v in values}
    return np.asarray(values, dtype=object if len(kinds) > 1 or str in kinds else None)


def _plain_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _pairs(counts: Mapping[Any, int]) -> list[list[Any]]:
    """``{class: n}`` as ``[[class, n], ...]`` with plain class values (saved as they are)."""
    return [[to_python(c), int(n)] for c, n in counts.items()]


#: the key that marks a saved NumPy array among a sampler's parameters
_ARRAY = "__ndarray__"


def _plain_param(name: str, value: Any) -> Any:
    """A constructor parameter as plain data a safe model file holds, its types kept: tuples,
    lists and dict keys as they are, NumPy scalars as Python ones, an array tagged.

    Raises:
        DataError: a value a safe file cannot hold (a callable, a ``RandomState``).
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {_ARRAY: [_plain_param(name, v) for v in value.tolist()], "dtype": str(value.dtype)}
    if isinstance(value, list | tuple):
        return type(value)(_plain_param(name, v) for v in value)
    if isinstance(value, dict):
        return {_plain_param(name, k): _plain_param(name, v) for k, v in value.items()}
    if not isinstance(value, str | int | float | bool | type(None)):
        raise DataError(
            f"save(): the parameter {name}= is a {type(value).__name__}, which a safe model file "
            "cannot hold; give it as plain data (an int random_state, a dict sampling_strategy) "
            "or pickle the sampler instead"
        )
    return value


def _param_value(value: Any) -> Any:
    """A parameter as :func:`_plain_param` saved it, back as it was given."""
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.asarray(value[_ARRAY], dtype=value["dtype"])
        return {k: _param_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_param_value(v) for v in value)
    return value
