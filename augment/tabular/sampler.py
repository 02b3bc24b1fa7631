"""``GANOverSampler``: the conditional tabular GAN as an imbalanced-learn sampler.

It follows imbalanced-learn's template: ``fit_resample`` validates, computes
``sampling_strategy_`` with imbalanced-learn's own semantics, and calls ``_fit_resample``; the output
has the caller's container type (DataFrame in, DataFrame out, with dtypes kept)::

    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    from augment import GANOverSampler

    pipe = make_pipeline(GANOverSampler(random_state=0), LogisticRegression(max_iter=1000))
    pipe.fit(X_train, y_train)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from augment.core.errors import DataError
from augment.core.sampler import COMMON_CONSTRAINTS, GANSampler
from augment.core.train import TrainingLoop, settings_from
from augment.tabular.anchored import RowSpace
from augment.tabular.cgan import GANSettings, TrainSettings
from augment.tabular.choice import choose_generator
from augment.tabular.form import TableForm, missing_dtype
from augment.tabular.generation import GENERATORS, RowGenerator, real_row_space
from augment.tabular.roles import Wording, resolve_roles
from augment.tabular.schema import infer_schema
from augment.tabular.synthesizer import (
    SYNTHESIZER_FORMAT,
    Synthesizer,
    fit_table_unit,
    synthesizer_from_payload,
)

_FALLBACK_LABEL = "__augment_label__"


def _label_name(y: Any, columns: list[str]) -> str:
    """The label column's name in saved models: y's own name, else "label", never a feature's."""
    for name in (getattr(y, "name", None), "label"):
        if isinstance(name, str) and name and name not in columns:
            return name
    return _FALLBACK_LABEL


class GANOverSampler(GANSampler):
    """Oversample with a conditional tabular GAN (mode-specific normalisation, WGAN-GP, PacGAN).

    Args:
        sampling_strategy: imbalanced-learn semantics ("auto" = "not majority", "minority",
            "not minority", "all", a float ratio for binary problems, or a dict of target counts).
        mode: ``conditional`` (one GAN conditioned on the class) or ``per_class`` (one per class).
        steps: optimizer steps (not epochs); batch_size, lr: optimisation knobs.
        ema_decay: the rows come from an exponential moving average of the generator's weights
            (0 turns it off); on the benchmarks it raised balanced accuracy by about 0.02.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``auto`` (bf16 autocast on CUDA, float32 on a CPU), ``fp32`` or ``bf16``.
        random_state: seed; the same seed and data give the same rows.
        columns: the role of some columns, by name (DataFrame) or index (array), overriding the
            inferred one (:mod:`augment.tabular.roles`): ``continuous``, ``integer``,
            ``categorical``, ``boolean``, ``datetime`` (a datetime dtype or date strings),
            ``id`` (never learned; generated rows get fresh ids of the same form),
            ``ignore`` (left out of the model; generated rows get a missing value there, a
            NumPy int / bool column becoming ``Int64`` / ``boolean`` to hold it) or ``text``
            (refused: declare it ``ignore`` or ``categorical``). E.g.
            ``columns={"signup": "datetime", "note": "ignore"}``.
        categorical_columns: column names (DataFrame) or indices (array) to treat as categorical,
            on top of the inferred ones (strings, bools, categoricals, integers with few values);
            the same as ``columns={name: "categorical"}``.
        max_levels: a categorical column with more distinct values keeps its ``max_levels``
            most frequent ones for the model; the rest share one level, and a generated row
            with it gets one of them drawn from its class's frequencies
            (:mod:`augment.tabular.levels`). None keeps every level.
        continuous: ``quantile`` (the sampler's default: a quantile transform to a normal, one
            number per column) or ``gmm`` (mode-specific normalisation, a job's default). With
            half the rows anchored, ``quantile`` ranked as well on the KEEL benchmark, scored
            higher with forests and 5-NN, and fits in three quarters of the time.
        generator: where the new rows come from. ``mix`` (the default): a share
            ``anchored_share`` of each class's rows is anchored (between a real row of the class
            and one of its 5 nearest same-class rows or, for half of them, the class's centre;
            see :mod:`augment.tabular.anchored`), the
            rest comes from the GAN; ``gan``: all from the GAN; ``anchored``: all anchored, and no
            GAN is trained. On the KEEL benchmark (benchmarks/NOTES.md) the GAN's rows serve
            trees and forests best, the anchored ones logistic regression and nearest neighbours;
            the mix ranks first. ``auto``: pick one of ``mix``, ``anchored`` and ``gan`` on an
            inner split of the training rows (a GAN fitted on three quarters, two cheap
            classifiers scored on the rest by balanced accuracy; ``mix`` stays unless another
            leads it by more than 1.645 tie spreads, see :mod:`augment.tabular.choice`); it
            costs a second GAN fit. ``choice_`` reports it.
        anchored_share: the anchored share of the rows in ``mix`` mode (the rest is the GAN's).
        filter_generated: draw three times the GAN rows needed and keep the third whose 5
            nearest real training rows (in the whitened space of the training rows) are most
            often of their own class (the counts stay exact);
            ``n_dropped_`` says how many drawn rows were dropped.
        match_moments: move each class's GAN rows (after the filter), by one affine map of the
            continuous columns, to the mean and covariance of the class's real rows (both
            shrunk, Ledoit-Wolf; values clipped to the real range). A linear model learns its
            direction from these moments; on the KEEL benchmark it lifted logistic
            regression's AUC (benchmarks/NOTES.md).
        privacy_floor: None (off, the default) or a quantile q in (0, 1), e.g. 0.1: a generated
            row, GAN or anchored, that lies nearer to a real training row of its class than the
            q-quantile of the class's real rows' distances to their nearest other row of the
            class (how far an unseen real row would sit) is redrawn, so no row copies a real one
            and the counts stay exact; ``n_redrawn_`` counts them. docs/tabular.md, "Privacy",
            says what it costs.

    Fitted attributes: ``classes_``, ``sampling_strategy_``, ``synthesizer_`` (no units with
    ``generator="anchored"``), ``n_generated_``, ``n_anchored_`` (anchored rows per class),
    ``n_dropped_`` (drawn GAN rows the neighbour check dropped, per class), ``n_moved_`` (GAN
    rows the moment map moved, per class), ``n_redrawn_`` (rows the privacy floor redrew, per
    class; None without the floor), ``generator_`` (the
    generator used), ``choice_`` (with ``auto``: the chosen generator and every candidate's score;
    None otherwise), ``space_`` (the real rows that anchor rows and the check uses; ``save``
    stores them with the model), ``n_ids_issued_`` (fresh ids handed out so far: ``sample``
    counts on from there, also after ``load``).

    Example:
        >>> X_res, y_res = GANOverSampler(random_state=0).fit_resample(X, y)
    """

    _parameter_constraints: dict = {
        **COMMON_CONSTRAINTS,
        "generator_dims": ["array-like"],
        "discriminator_dims": ["array-like"],
        "pac": [Interval(Integral, 1, None, closed="left")],
        "max_modes": [Interval(Integral, 1, None, closed="left")],
        "continuous": [StrOptions({"quantile", "gmm"})],
        "categorical_columns": ["array-like", None],
        "columns": [dict, None],
        "max_levels": [Interval(Integral, 1, None, closed="left"), None],
        "generator": [StrOptions({*GENERATORS, "auto"})],
        "anchored_share": [Interval(Real, 0, 1, closed="both")],
        "filter_generated": ["boolean"],
        "match_moments": ["boolean"],
        "privacy_floor": [Interval(Real, 0, 1, closed="neither"), None],
    }

    _FORMAT = SYNTHESIZER_FORMAT
    _SAVED = {"input_kind": "dataframe"}
    _synthesizer_from_payload = staticmethod(synthesizer_from_payload)

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        mode: str = "conditional",
        steps: int = 250,
        batch_size: int = 64,
        lr: float = 1e-3,
        critic_steps: int = 3,
        noise_dim: int = 32,
        generator_dims: Sequence[int] = (128, 128),
        discriminator_dims: Sequence[int] = (128, 128),
        pac: int = 4,
        ema_decay: float = 0.95,
        max_modes: int = 6,
        continuous: str = "quantile",
        device: str = "auto",
        precision: str = "auto",
        random_state: Any = None,
        categorical_columns: Sequence[Any] | None = None,
        columns: Mapping[Any, str] | None = None,
        max_levels: int | None = 50,
        progress: bool = False,
        cpu_threads: int | None = 1,
        generator: str = "mix",
        anchored_share: float = 0.5,
        filter_generated: bool = True,
        match_moments: bool = True,
        privacy_floor: float | None = None,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self._store_params(locals())

    # imbalanced-learn would turn X into a float array; keep DataFrames (mixed dtypes) as they are.
    def _check_X_y(self, X, y, accept_sparse=None):  # noqa: N802 - imblearn's name
        y, binarize_y = self._check_target(y)
        X = _dense(X)
        if not isinstance(X, pd.DataFrame):
            X = np.asarray(X)
            if X.ndim != 2:
                raise DataError(f"X must be 2-D (rows, features), got shape {X.shape}")
        if len(X) != len(y):
            raise DataError(f"X has {len(X)} rows but y has {len(y)}; they must match")
        # what scikit-learn's estimators record, for get_feature_names_out and pipelines
        self.n_features_in_ = X.shape[1]
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return X, y, binarize_y

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The output's column names: the input's (an oversampler adds rows, not columns)."""
        from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    @staticmethod
    def _check_target(y):
        from imblearn.utils import check_target_type

        return check_target_type(y, indicate_one_vs_all=True)

    def _frame(self, X) -> tuple[pd.DataFrame, dict[str, str], Wording]:
        """X as a frame with string column names, the declared roles by those names, and how
        the errors name the columns (an array's by position)."""
        if isinstance(X, pd.DataFrame):
            frame = X.reset_index(drop=True).copy()
            frame.columns = [str(c) for c in frame.columns]

            def name(key: Any) -> str:
                return str(key)

            keys = {}
        else:
            frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])

            def name(key: Any) -> str:
                return f"x{int(key)}" if isinstance(key, Integral) else str(key)

            keys = {f"x{i}": i for i in range(X.shape[1])}
        declared = {name(c): "categorical" for c in (self.categorical_columns or [])}
        keys.update({name(key): key for key in (self.columns or {})})  # as the user wrote them
        for key, role in (self.columns or {}).items():
            if declared.get(name(key), role) != role:
                raise DataError(
                    f"column {key!r} is in categorical_columns and in columns={{{key!r}: "
                    f"{role!r}}}; give it one role"
                )
            declared[name(key)] = role
        wording = Wording(python_api=True, keys=keys)
        if not isinstance(X, pd.DataFrame) and frame.dtypes.map(lambda t: t.kind in "iub").any():
            ignored = [keys.get(n, n) for n, r in declared.items() if r == "ignore"]
            if ignored:
                raise DataError(
                    f"columns {ignored} are declared ignore, but X is an array of "
                    f"{frame.dtypes.iloc[0]}, which cannot hold the missing values generated "
                    "rows get there; pass a DataFrame or a float array"
                )
        return frame, declared, wording

    # -- the hooks of core.sampler.GANSampler ------------------------------------------------
    def _prepare(self, X, y) -> tuple[tuple[pd.DataFrame, Any], list[Any]]:
        frame, declared, wording = self._frame(X)
        label = _label_name(self.__dict__.pop("_y_original", None), list(frame.columns))
        frame[label] = column_or_1d(y)
        roles = resolve_roles(frame, label, declared, wording)
        # ids and ignored columns out, date strings and datetimes as seconds, a missing number
        # as a value and a flag (a missing category is a level), rare levels as one
        form = TableForm.fit(frame, label, roles, max_levels=self.max_levels)
        model_rows = form.to_model(frame)
        # max_levels bounds the one-hot width here (None: every level, as asked), so no job-style
        # max_categories refusal
        schema = infer_schema(
            model_rows, label, overrides=roles.schema_overrides(), max_categories=sys.maxsize
        )
        return (model_rows, schema, form, list(frame.columns)), schema.classes

    def _fit_unit(self, prepared, classes: list[Any], seed: int):
        frame, schema, _, _ = prepared
        return fit_table_unit(
            frame,
            schema,
            classes,
            gan=settings_from(GANSettings, self),
            train=settings_from(TrainSettings, self, seed=seed),
            max_modes=self.max_modes,
            continuous=self.continuous,
            device=self.device,
            loop=TrainingLoop(progress=self.progress),
        )[0]

    def _before_fit(self, prepared, classes: list[Any], plan: dict[Any, int], seed: int) -> None:
        self.generator_, self.choice_ = self.generator, None
        if self.generator != "auto":
            return
        model_rows, schema, form, columns = prepared
        if not any(plan.values()):  # nothing to generate: nothing to choose between
            self.generator_ = "mix"
            return
        choice = choose_generator(
            model_rows,
            schema,
            form,
            columns,
            plan,
            self.mode,
            lambda rows, unit: self._fit_unit((rows, schema, form, columns), unit, seed),
            self.anchored_share,
            self.filter_generated,
            seed,
            self.match_moments,
        )
        self.generator_, self.choice_ = choice.chosen, choice.to_dict()

    def _needs_model(self) -> bool:
        return self.generator_ != "anchored"

    def _assemble(self, models, prepared, classes: list[Any]) -> Synthesizer:
        model_rows, schema, form, columns = prepared
        # the real rows in the model's form: anchors for interpolation, neighbours for the check
        self.space_ = real_row_space(model_rows, schema, form)
        return Synthesizer(models, schema, columns, form)

    def _sample(self, plan: Mapping[Any, int], seed: int) -> tuple[Any, np.ndarray]:
        source = RowGenerator(
            self.synthesizer_,
            getattr(self, "space_", None),
            getattr(self, "generator_", self.generator),
            self.anchored_share,
            self.filter_generated,
            self.match_moments,
            self.privacy_floor,
        )
        # fresh ids: one sequence over every class's rows, GAN or anchored, and on over later
        # calls of sample(): no two rows this fitted sampler makes share an id
        first = getattr(self, "n_ids_issued_", 0)
        parts = [rows for _, rows in source.class_batches(plan, seed, first_id=first)]
        self.n_anchored_ = source.origin["anchored"]
        self.n_dropped_ = source.origin["dropped"]
        self.n_moved_ = source.origin["moved"]
        self.n_redrawn_ = source.origin.get("redrawn")
        if self.synthesizer_.form.ids:
            self.n_ids_issued_ = source.issued
        generated = (
            pd.concat(parts, ignore_index=True) if parts else self.synthesizer_.sample({}, seed)
        )
        label = self.synthesizer_.schema.label
        y = generated[label].to_numpy() if len(generated) else np.empty(0, dtype=object)
        features = generated.drop(columns=[label])
        if getattr(self, "input_kind_", "dataframe") == "array":
            return features.to_numpy(), y
        return features, y

    def _combine(self, X, y, new_x, new_y):
        y = np.asarray(y)
        if isinstance(X, pd.DataFrame):
            if len(new_y) == 0:
                return X, y
            new_x.columns = X.columns
            new_x = new_x.astype(X.dtypes.to_dict())
            X_res = pd.concat([X.reset_index(drop=True), new_x], ignore_index=True)
        else:
            X = np.asarray(X)
            extra = (
                np.empty((0, X.shape[1]), dtype=X.dtype)
                if len(new_y) == 0
                else np.asarray(new_x).astype(X.dtype)
            )
            X_res = np.concatenate([X, extra])
        return X_res, np.concatenate([y, new_y.astype(y.dtype)])

    def _sampleable_classes(self) -> list[Any]:
        # every class of the fitted table: anchored rows need no GAN unit
        return list(self.synthesizer_.schema.classes)

    # -- persistence: the real rows that anchored rows and the neighbour check need ---------
    def _saved_state(self) -> dict[str, Any]:
        # the anchors and the neighbour check need the real rows; GAN rows alone do not, and
        # then the file holds no real row
        chosen = {
            "generator_": self.generator_,
            "choice_": self.choice_,
            "ids_issued": getattr(self, "n_ids_issued_", 0),
        }
        if self.generator_ == "gan" and not (
            self.filter_generated or self.match_moments or self.privacy_floor
        ):
            return chosen
        return {**chosen, "real_rows": self.space_.state_dict()}

    def _restore_state(self, extra: dict[str, Any]) -> None:
        self.generator_ = extra.get("generator_", self.generator)
        self.choice_ = extra.get("choice_")
        self.n_ids_issued_ = int(extra.get("ids_issued", 0))
        if "match_moments" not in extra.get("params", {}):
            self.match_moments = False  # saved before it existed: its GAN rows were not moved
        if "real_rows" in extra:
            self.space_ = RowSpace.from_state_dict(extra["real_rows"], self.synthesizer_.schema)

    def fit_resample(self, X, y, **params):
        self.input_kind_ = "dataframe" if isinstance(X, pd.DataFrame) else "array"
        self._y_original = y  # imbalanced-learn hands _fit_resample a plain array
        self.n_ids_issued_ = 0  # a new fit numbers fresh ids from the largest real one again
        if isinstance(X, pd.DataFrame) and self.columns:
            # an ignored column's generated cells are missing: a NumPy int / bool column takes
            # its nullable dtype (Int64, boolean) to hold them, in the real rows too
            ignored = {str(key) for key, role in self.columns.items() if role == "ignore"}
            X = X.astype(
                {c: missing_dtype(str(X[c].dtype)) for c in X.columns if str(c) in ignored}
            )
        X_res, y_res = super().fit_resample(X, y, **params)
        if sparse.issparse(X):  # a sparse matrix in, a sparse matrix of the same format out
            X_res = type(X)(X_res)
        return X_res, y_res


#: the most cells a sparse input is densified to (8 bytes each: 1.6 GB)
MAX_DENSE_CELLS = 200_000_000


def _dense(X):
    """X with sparse storage made dense: a scipy sparse matrix, or a DataFrame of pandas
    sparse columns (imbalanced-learn casts the output back to the input's dtypes). The GAN
    models every cell, so sparsity saves nothing inside; a matrix too large to densify is
    refused rather than allowed to exhaust memory."""
    is_frame = isinstance(X, pd.DataFrame)
    if not (
        sparse.issparse(X) or is_frame and any(isinstance(t, pd.SparseDtype) for t in X.dtypes)
    ):
        return X
    cells = X.shape[0] * X.shape[1]
    if cells > MAX_DENSE_CELLS:
        raise DataError(
            f"X is sparse with {X.shape[0]:,} rows x {X.shape[1]:,} columns; densified it "
            f"would take {cells * 8 / 2**30:.1f} GB (limit {MAX_DENSE_CELLS:,} cells): select "
            "fewer columns (e.g. the informative ones) or reduce them (TruncatedSVD) first"
        )
    if sparse.issparse(X):
        return X.toarray()
    return (
        X.sparse.to_dense()
        if all(isinstance(t, pd.SparseDtype) for t in X.dtypes)
        else (X.apply(lambda c: c.sparse.to_dense() if isinstance(c.dtype, pd.SparseDtype) else c))
    )
