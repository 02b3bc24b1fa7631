"""Do the synthetic rows help a downstream classifier? Real vs real+synthetic vs real+SMOTE.

Each arm trains the same classifiers on its rows and is scored on the same real holdout:

- ``baseline``: the real training rows;
- ``augmented``: the real training rows plus the synthetic rows;
- ``smote``: the real training rows oversampled by imbalanced-learn to the same class counts.

    report = validate_downstream(train, holdout, synthetic, schema, target_counts, seed=0)
    report.metrics["lift/balanced_accuracy"], report.passed

The do-no-harm gate passes when the augmented arm's balanced accuracy (mean over classifiers) is
at least ``min_lift`` above the baseline's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from augment.core.balance import class_counts, to_python
from augment.core.errors import ConfigError, DataError
from augment.core.validation import ValidationReport, arm_rows, build_report, stratified_pick
from augment.tabular.fidelity import label_values
from augment.tabular.schema import TableSchema, category_value

CLASSIFIERS = ("logistic", "random_forest", "hist_gradient_boosting")

# HistGradientBoosting handles a categorical column natively only up to max_bins (255) values;
# wider columns go in as ordinal codes.
_HGB_MAX_CATEGORIES = 255


def validate_downstream(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    target_counts: dict[Any, int],
    classifiers: Sequence[str] = ("logistic", "random_forest"),
    smote: bool = True,
    min_lift: float = 0.0,
    seed: int = 0,
    max_rows: int | None = None,
) -> ValidationReport:
    """Train classifiers on real, real+synthetic and real+SMOTE rows; score them on the holdout.

    Args:
        train: real training rows (features and label).
        holdout: real rows never used for training; every arm is scored on them.
        synthetic: generated rows with the same columns; may be empty.
        schema: column kinds, label and classes.
        target_counts: class -> final row count (real + generated); the SMOTE arm oversamples to
            these counts. A target below the real count leaves that class as it is.
        classifiers: names from ``CLASSIFIERS``.
        smote: whether to run the SMOTE arm.
        min_lift: the gate passes when ``lift/balanced_accuracy >= min_lift``.
        seed: seeds the classifiers, SMOTE and the sample below.
        max_rows: at most this many rows in any arm. Larger arms use a stratified sample (see
            :func:`augment.core.validation.arm_rows`): the same real rows in every arm, the same
            synthetic counts per class in the augmented arm as SMOTE makes.

    Returns:
        A ``ValidationReport``. Metric names, with ``<m>`` one of ``accuracy``,
        ``balanced_accuracy``, ``macro_f1``, ``recall/<class key>``:
        ``<arm>/<classifier>/<m>``; ``<arm>/<m>`` (mean over classifiers);
        ``lift/<m>`` and ``lift/<classifier>/<m>`` (augmented - baseline);
        ``lift_vs_smote/<m>`` (augmented - smote, when the SMOTE arm ran);
        ``validation/passed`` (1.0 or 0.0).
        Balanced accuracy averages recall over the classes present in the holdout; macro F1
        averages F1 over the classes present in the holdout or predicted; the recall of a class
        absent from the holdout is NaN.

    Raises:
        ConfigError: an unknown classifier name.
        DataError: missing columns, an empty holdout, or fewer than two classes in ``train``.

    Example:
        >>> report = validate_downstream(train, holdout, synthetic, schema, {"rare": 300})
        >>> report.passed, report.notes  # doctest: +SKIP
        (True, [])
    """
    classifier_names = list(classifiers)
    unknown = [name for name in classifier_names if name not in CLASSIFIERS]
    if unknown or not classifier_names:
        raise ConfigError(
            f"validate.classifiers has unknown or no names {unknown}; "
            f"choose from {list(CLASSIFIERS)}"
        )
    if len(holdout) == 0:
        raise DataError("the holdout is empty; raise validate.holdout or provide more rows")

    train_labels = label_values(train, schema)
    holdout_labels = label_values(holdout, schema)
    synthetic_labels = label_values(synthetic, schema) if len(synthetic) else np.array([])
    notes: list[str] = []
    synthetic_counts = class_counts(synthetic_labels) if len(synthetic) else {}
    rows = arm_rows(class_counts(train_labels), synthetic_counts, max_rows)
    if rows.capped:
        rng = np.random.default_rng(seed)
        keep = stratified_pick(train_labels, rows.real, rng)
        train, train_labels = train.iloc[keep], train_labels[keep]
        keep = stratified_pick(synthetic_labels, rows.synthetic, rng)
        synthetic, synthetic_labels = synthetic.iloc[keep], synthetic_labels[keep]
        target_counts = rows.targets
        notes.append(
            f"validation used a stratified sample (validate.max_rows={max_rows}): "
            f"{len(train)} real and {len(synthetic)} synthetic rows"
        )
    if len(set(train_labels.tolist())) < 2:
        raise DataError(
            f"the training rows hold fewer than two classes of {schema.label!r}; "
            "a classifier cannot be trained"
        )
    # Schema classes first, then any label only the holdout or synthetic rows know: every arm is
    # scored over the same list, so that unseen holdout labels count as errors, not as nothing.
    classes = list(
        dict.fromkeys(
            [
                *schema.classes,
                *train_labels.tolist(),
                *holdout_labels.tolist(),
                *synthetic_labels.tolist(),
            ]
        )
    )
    class_index = {label: index for index, label in enumerate(classes)}

    def encode(labels: np.ndarray) -> np.ndarray:
        # sklearn rejects object arrays of non-strings, so every label becomes its class index.
        return np.array([class_index[label] for label in labels], dtype=np.int64)

    train_x, train_y = _features(train, schema), encode(train_labels)
    holdout_x, holdout_y = _features(holdout, schema), encode(holdout_labels)

    arms: dict[str, tuple[pd.DataFrame, np.ndarray]] = {"baseline": (train_x, train_y)}
    if len(synthetic):
        arms["augmented"] = (
            pd.concat([train_x, _features(synthetic, schema)], ignore_index=True),
            np.concatenate([train_y, encode(synthetic_labels)]),
        )
    else:
        notes.append("no synthetic rows: the augmented arm is the baseline (lift 0)")
    if smote:
        try:
            oversampled = smote_resample(train, schema, target_counts, seed)
        except DataError as error:
            notes.append(f"smote arm skipped: {error}")
        else:
            if len(oversampled) == len(train):
                notes.append("smote arm: no class is below its target count; it is the baseline")
            arms["smote"] = (
                _features(oversampled, schema),
                encode(label_values(oversampled, schema)),
            )

    # The augmented arm is always reported, even when it is the baseline; SMOTE only if it ran.
    scored_arms = ["baseline", "augmented", *(["smote"] if "smote" in arms else [])]
    predictions: dict[tuple[str, str], np.ndarray] = {}
    for arm in scored_arms:
        for name in classifier_names:
            if arm not in arms:
                # Nothing generated: retraining on the very same rows would give the same model.
                predictions[arm, name] = predictions["baseline", name]
                continue
            arm_x, arm_y = arms[arm]
            # One OpenMP thread: on tables this small HistGradientBoosting gains nothing from
            # more, and when the cores are busy (a GAN training beside it) its spinning threads
            # made one fit take 15 s instead of 0.2 s. Results do not change.
            with threadpool_limits(limits=1, user_api="openmp"):
                model = _build_classifier(name, schema, seed).fit(arm_x, arm_y)
                predictions[arm, name] = model.predict(holdout_x)
    return build_report(
        holdout_y,
        predictions,
        classes,
        reference_arm="smote" if "smote" in arms else None,
        min_lift=min_lift,
        notes=notes,
        arm_sizes={arm: len(arm_x) for arm, (arm_x, _) in arms.items()},
        capped=rows.capped,
    )


def smote_resample(
    train: pd.DataFrame, schema: TableSchema, target_counts: dict[Any, int], seed: int = 0
) -> pd.DataFrame:
    """Oversample the real rows with imbalanced-learn up to ``target_counts`` rows per class.

    SMOTE when every feature is continuous, SMOTENC when they are mixed, SMOTEN when every feature
    is categorical; ``k_neighbors = min(5, smallest oversampled class - 1)``. Classes whose target
    is not above their real count are left as they are (SMOTE never removes rows).

    Args:
        train: real rows (features and label).
        schema: column kinds and label.
        target_counts: class -> final row count.
        seed: SMOTE's ``random_state``.

    Returns:
        The real rows followed by the new rows, features and label, index 0..N-1, with the
        schema's dtypes (integer columns rounded).

    Raises:
        DataError: a class to oversample has fewer than two rows, or is not in ``train``.

    Example:
        >>> smote_resample(train, schema, {"rare": 300}, seed=0)[schema.label].value_counts()
        ... # doctest: +SKIP
    """
    labels = label_values(train, schema)
    classes = list(dict.fromkeys(labels.tolist()))
    class_index = {label: index for index, label in enumerate(classes)}
    counts = {label: int(np.sum(labels == label)) for label in classes}
    # Keyed by class index: imbalanced-learn, like sklearn, wants plain integer or string labels.
    strategy: dict[int, int] = {}
    for raw_label, target in target_counts.items():
        label = to_python(raw_label)
        if int(target) <= counts.get(label, 0):
            continue
        if counts.get(label, 0) < 2:
            raise DataError(
                f"class {label!r} has {counts.get(label, 0)} real rows and a target of {target}; "
                "SMOTE needs at least 2 rows of a class to oversample it"
            )
        strategy[class_index[label]] = int(target)
    features = _features(train, schema)
    if not strategy:
        resampled_x, resampled_y = features, np.array([class_index[label] for label in labels])
    else:
        smallest = min(counts[classes[index]] for index in strategy)
        k_neighbors = min(5, smallest - 1)
        categorical = [i for i, spec in enumerate(schema.columns) if spec.kind == "categorical"]
        if not categorical:
            sampler = SMOTE(sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=seed)
        elif len(categorical) == len(schema.columns):
            sampler = SMOTEN(sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=seed)
        else:
            sampler = SMOTENC(
                categorical_features=categorical,
                sampling_strategy=strategy,
                k_neighbors=k_neighbors,
                random_state=seed,
            )
        encoded = np.array([class_index[label] for label in labels], dtype=np.int64)
        resampled_x, resampled_y = sampler.fit_resample(features, encoded)
    resampled_x = pd.DataFrame(resampled_x, columns=features.columns).reset_index(drop=True)
    # Back to the input's dtypes (integer columns rounded), like rows the generator restores.
    oversampled = pd.DataFrame(
        {spec.name: spec.restore(resampled_x[spec.name].to_numpy()) for spec in schema.columns}
    )
    oversampled[schema.label] = schema.restore_labels([classes[i] for i in resampled_y])
    return oversampled


def _features(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Feature columns only: continuous as float64, categorical as plain objects.

    One dtype per kind lets real, synthetic and SMOTE rows (which may arrive as category, string
    or int columns) be stacked and encoded alike.
    """
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise DataError(f"the rows lack the feature columns {missing}; expected {schema.names}")
    columns = {}
    for spec in schema.columns:
        series = frame[spec.name]
        if spec.kind == "continuous":
            columns[spec.name] = series.to_numpy(dtype=np.float64)
        else:
            # every kind of missing value as None, which scikit-learn's encoders take as
            # missing (pd.NA of a nullable boolean or string column they refuse)
            columns[spec.name] = np.array(
                [category_value(value) for value in series.tolist()], dtype=object
            )
    return pd.DataFrame(columns)


def _build_classifier(name: str, schema: TableSchema, seed: int) -> Pipeline:
    categorical = [spec.name for spec in schema.categorical]
    continuous = [spec.name for spec in schema.continuous]
    if name == "logistic":
        encode = OneHotEncoder(handle_unknown="ignore")
        steps = [("categorical", encode, categorical), ("continuous", StandardScaler(), continuous)]
        model = LogisticRegression(max_iter=2000)
    elif name == "random_forest":
        encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        steps = [("categorical", encode, categorical), ("continuous", "passthrough", continuous)]
        # every core: the trees are seeded one by one, so the forest is the same for any n_jobs
        model = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1)
    elif name == "hist_gradient_boosting":
        # Unknown categories become NaN, which the trees route like missing values.
        encode = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
        steps = [("categorical", encode, categorical), ("continuous", "passthrough", continuous)]
        native = [
            index
            for index, spec in enumerate(schema.categorical)
            if len(spec.categories or []) <= _HGB_MAX_CATEGORIES
        ]
        model = HistGradientBoostingClassifier(
            random_state=seed, categorical_features=native or None
        )
    else:
        raise ConfigError(
            f"validate.classifiers has an unknown name {name!r}; choose from {list(CLASSIFIERS)}"
        )
    # The categorical block comes first, so HistGradientBoosting's indices above point at it.
    steps = [step for step in steps if step[2]]
    return Pipeline([("encode", ColumnTransformer(steps, remainder="drop")), ("classify", model)])
