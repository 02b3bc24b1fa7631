"""MLflow "models from code" entry point for a saved synthesizer.

MLflow copies this file next to the logged model and executes it when the model is loaded, so it
must stay importable with nothing but mlflow and pandas at the top: the synthesizer (and torch
behind it) is imported only in ``load_context``. ``augment.tracking.JobTracker.log_synthesizer``
logs it with the saved synthesizer file as the ``synthesizer`` artifact.

Usage once logged::

    model = mlflow.pyfunc.load_model("models:/<name>/<version>")
    rows = model.predict(pd.DataFrame({"label": ["fraud"], "n": [100]}), params={"seed": 7})
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

LABEL_COLUMN = "label"
COUNT_COLUMN = "n"


class SynthesizerModel(PythonModel):
    """Pyfunc wrapper that turns ``(label, n)`` requests into generated rows.

    The input frame has one row per class: ``label`` (the class, as it appears in the training
    labels) and ``n`` (how many rows to generate for it). Rows asking for the same label are
    added up. ``params={"seed": int}`` makes the output reproducible (default 0).
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load the synthesizer artifact on the CPU, so the model serves without a GPU."""
        # Imported here: MLflow executes this file at log time too, where torch is not needed.
        from augment import load_synthesizer

        self.synthesizer = load_synthesizer(context.artifacts["synthesizer"], device="cpu")

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Generate ``n`` rows for each requested ``label``.

        Args:
            context: The MLflow context (unused; the synthesizer is loaded in ``load_context``).
            model_input: A DataFrame with columns ``label`` and ``n``.
            params: Optional ``{"seed": int}``.

        Returns:
            A DataFrame of generated rows that includes the label column; for an image
            synthesizer, columns ``label`` and ``image`` (PNG bytes).

        Raises:
            ValueError: If a column is missing or a count is negative.
        """
        frame = pd.DataFrame(model_input)
        missing = [c for c in (LABEL_COLUMN, COUNT_COLUMN) if c not in frame.columns]
        if missing:
            raise ValueError(
                f"Synthesizer model input lacks column(s) {missing}; send a table with columns "
                f"'{LABEL_COLUMN}' (class) and '{COUNT_COLUMN}' (rows to generate)."
            )
        counts: dict[Any, int] = {}
        for label, n in zip(
            frame[LABEL_COLUMN].tolist(), frame[COUNT_COLUMN].tolist(), strict=True
        ):
            if int(n) < 0:
                raise ValueError(f"Row count for label {label!r} is {n}; it must be 0 or more.")
            counts[label] = counts.get(label, 0) + int(n)
        seed = int((params or {}).get("seed", 0))
        # Tables come back as rows; images as PNG bytes with their label, as in the image shards.
        return self.synthesizer.sample_frame(counts, seed=seed)


mlflow.models.set_model(SynthesizerModel())
