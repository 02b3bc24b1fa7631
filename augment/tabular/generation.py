"""Where a table's new rows come from: the GAN, real anchors, or a mix of both, streamed.

The sampler (``GANOverSampler.fit_resample``) and the job (``augment run``) generate through the
same :class:`RowGenerator`, so a job writes what ``fit_resample`` would return, at any scale:

- each class's count is split into GAN rows and anchored rows (``generator``: ``gan``,
  ``anchored`` or ``mix`` with ``anchored_share``);
- GAN rows come in batches; with ``filter_generated`` each batch is drawn three times over and
  the third whose nearest real rows are most often of its class is kept
  (:meth:`augment.tabular.anchored.RowSpace.neighbour_share`), so the counts stay exact;
- with ``match_moments`` a class's GAN rows are then moved, by one affine map of the continuous
  columns, to the mean and covariance of the class's real rows
  (:meth:`augment.tabular.anchored.RowSpace.moment_map`);
- anchored rows lie between a real row of the class and a same-class neighbour or the class's
  centre (:meth:`augment.tabular.anchored.RowSpace.interpolate`), one seeded stream per class;
- with ``privacy_floor`` (a quantile q), a row of either source nearer to a real training row of
  its class than the q-quantile of the real rows' own distances to their nearest other row of the
  class is redrawn from its source, so the counts stay exact
  (:meth:`augment.tabular.anchored.RowSpace.floor_margin`, :mod:`augment.core.privacy`).

Memory is bounded by the batch size and the real rows of the :class:`RowSpace`; ``origin`` counts
per class how many rows came from each source, how many drawn GAN rows the filter dropped, how
many GAN rows the moment map moved and, with the floor, how many rows it redrew.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from augment.core.seeds import Stream, child_seed, stream
from augment.core.validation import proportional_pick
from augment.core.vectors import DRAWS_PER_KEPT, best_share
from augment.tabular.anchored import RowSpace
from augment.tabular.form import TableForm
from augment.tabular.schema import TableSchema

if TYPE_CHECKING:  # the synthesizer samples through this module (Synthesizer.keep_rows)
    from augment.tabular.synthesizer import Synthesizer

GENERATORS = ("mix", "gan", "anchored")
#: the privacy floor redraws a batch's too-close rows in at most this many rounds; rows still
#: missing then are the farthest of the too-close ones (counted in origin["below_floor"])
FLOOR_ROUNDS = 8


def real_row_space(
    rows: pd.DataFrame,
    schema: TableSchema,
    form: TableForm,
    max_rows: int | None = None,
    seed: int = 0,
) -> RowSpace:
    """The real training rows (in the model's form) that anchor new rows and judge the GAN's:
    all of them, or a sample of ``max_rows``, each class in proportion, so that a table of
    millions of rows costs bounded memory and neighbour searches. Columns with gaps are left
    out of the distances (see :class:`RowSpace`)."""
    if max_rows is not None and len(rows) > max_rows:
        labels = rows[schema.label].to_numpy()
        pick = proportional_pick(labels, max_rows, stream(seed, Stream.TABLE_SAMPLE))
        rows = rows.iloc[np.sort(pick)]
    gaps = [*form.missing.flags, *form.missing.flags.values()]
    return RowSpace(rows, schema, unmeasured=gaps)


class RowGenerator:
    """Exact per-class counts of new rows from a fitted synthesizer and the real rows.

    Args:
        synthesizer: the fitted GAN(s); may have no units when ``generator="anchored"``.
        space: the real training rows (anchors and the filter's neighbours); None only for
            ``generator="gan"`` without the filter.
        generator: ``mix``, ``gan`` or ``anchored``.
        anchored_share: the anchored share of each class's rows under ``mix``.
        filter_generated: draw three times the GAN rows and keep the best third.
        match_moments: give each class's GAN rows the mean and covariance of its real rows
            (continuous columns; after the filter).
        privacy_floor: a quantile q in (0, 1), or None (off): redraw each row, GAN or anchored,
            that lies nearer to a real training row of its class than the q-quantile of the
            class's real rows' distances to their nearest other row of the class (after the
            filter and the moment map).

    Example:
        >>> rows = RowGenerator(synth, space).class_batches({"minority": 500}, seed=0)
        >>> pd.concat(batch for _, batch in rows)  # 250 GAN rows, then 250 anchored ones
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        space: RowSpace | None,
        generator: str = "mix",
        anchored_share: float = 0.5,
        filter_generated: bool = True,
        match_moments: bool = True,
        privacy_floor: float | None = None,
    ) -> None:
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
        needs_space = filter_generated or match_moments or privacy_floor
        if space is None and (generator != "gan" or needs_space):
            raise ValueError(f"generator={generator!r} needs the real rows (a RowSpace)")
        self.synthesizer = synthesizer
        self.space = space
        self.generator = generator
        self.anchored_share = anchored_share
        self.filter_generated = filter_generated
        self.match_moments = match_moments
        self.privacy_floor = privacy_floor or None
        # per class: GAN rows, anchored rows, drawn GAN rows the filter dropped, and GAN rows the
        # moment map moved (all of a class's GAN rows, or none when it had no map); with the
        # floor, the rows it redrew and those kept below it when redraws ran out
        self.origin: dict[str, dict[Any, int]] = {
            "gan": {},
            "anchored": {},
            "dropped": {},
            "moved": {},
        }
        if self.privacy_floor:
            self.origin.update(redrawn={}, below_floor={})
        self.issued = 0  # after class_batches: its first_id plus the rows it made

    def split(self, n_rows: int) -> tuple[int, int]:
        """(GAN rows, anchored rows) of a class's ``n_rows``."""
        share = {"gan": 0.0, "anchored": 1.0}.get(self.generator, self.anchored_share)
        anchored = int(round(n_rows * share))
        return n_rows - anchored, anchored

    def class_batches(
        self, plan: Mapping[Any, int], seed: int, batch_size: int = 4096, first_id: int = 0
    ) -> Iterator[tuple[Any, pd.DataFrame]]:
        """Yield ``(class, rows)`` batches with the input's columns, label included: per class
        its GAN rows, then its anchored rows; exactly ``plan[c]`` rows of class c.

        Fresh ids (id columns) count on from ``first_id`` over every batch and class, so a caller
        that passes how many it handed out before (:attr:`issued` after the last call) never
        repeats one; the draws of rare levels and UUIDs depend on it too."""
        schema = self.synthesizer.schema
        self.issued = first_id
        for cls, n_rows in plan.items():
            n_gan, n_anchored = self.split(n_rows)
            for key in self.origin:
                self.origin[key][cls] = 0
            index = schema.classes.index(cls)
            # one stream per seed and class (by its place among all classes) for each purpose:
            # 1 anchors and mixing weights, 2 and 3 rare levels and UUIDs of GAN / anchored rows
            restore = stream(seed, index, Stream.ROWS_GAN_RESTORE, first_id)
            moments = None  # one map per class, fitted on its first batch (None: no map)
            for batch, (rows, dropped) in enumerate(
                self._gan_batches(cls, n_gan, seed, batch_size)
            ):
                if self.match_moments and batch == 0:
                    moments = self.space.moment_map(rows, cls)
                if moments is not None:
                    rows = moments.apply(rows)
                    self.origin["moved"][cls] += len(rows)
                rows = self._above_floor(
                    cls, rows, self._gan_redraw(cls, seed, index, batch, batch_size, moments)
                )
                self.origin["gan"][cls] += len(rows)
                self.origin["dropped"][cls] += dropped
                yield cls, self._finish(cls, rows, restore)
            rng = stream(seed, index, Stream.ROWS_ANCHORED)
            restore = stream(seed, index, Stream.ROWS_ANCHORED_RESTORE, first_id)
            for start in range(0, n_anchored, batch_size):
                size = min(batch_size, n_anchored - start)
                rows = self.space.interpolate(cls, size, rng)  # in the model's form
                rows = self._above_floor(
                    cls, rows, lambda n, cls=cls, rng=rng: self.space.interpolate(cls, n, rng)
                )
                self.origin["anchored"][cls] += size
                yield cls, self._finish(cls, rows, restore)

    def _finish(self, cls: Any, rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        rows = self.synthesizer.finish(cls, rows, rng, first_id=self.issued)
        self.issued += len(rows)
        return rows

    # -- the privacy floor: one step the loop calls on every batch of either source ----------
    def _above_floor(
        self, cls: Any, rows: pd.DataFrame, redraw: Callable[[int], pd.DataFrame]
    ) -> pd.DataFrame:
        """``rows`` (model's form, class ``cls``) with those below the privacy floor replaced
        by rows of ``redraw(n)`` (the same source) that clear it: as many rows as came in.
        Each round draws what is missing, scaled by the share that cleared the floor so far;
        after :data:`FLOOR_ROUNDS` rounds, the rows still missing are the farthest of the
        too-close ones (``origin["below_floor"]``). Unchanged without a floor."""
        if not self.privacy_floor or len(rows) == 0:
            return rows
        names = self.space.schema.names
        margin = self.space.floor_margin(rows[names], cls, self.privacy_floor)  # (n,)
        kept, missing = [rows[margin >= 0]], int((margin < 0).sum())
        self.origin["redrawn"][cls] += missing
        spare, spare_margin = [rows[margin < 0]], [margin[margin < 0]]
        drawn, cleared = len(rows), len(rows) - missing
        for _ in range(FLOOR_ROUNDS):
            if missing == 0:
                break
            # enough draws for the missing rows at the rate seen so far (at least 1 in 20)
            fresh = redraw(int(np.ceil(missing * drawn / max(cleared, drawn / 20))))
            margin = self.space.floor_margin(fresh[names], cls, self.privacy_floor)
            drawn, cleared = drawn + len(fresh), cleared + int((margin >= 0).sum())
            good = fresh[margin >= 0].iloc[:missing]
            kept.append(good)
            missing -= len(good)
            spare.append(fresh[margin < 0])
            spare_margin.append(margin[margin < 0])
        if missing:  # the farthest of the too-close rows, so the counts stay exact
            farthest = np.argsort(-np.concatenate(spare_margin), kind="stable")[:missing]
            kept.append(pd.concat(spare, ignore_index=True).iloc[np.sort(farthest)])
            self.origin["below_floor"][cls] += missing
        return pd.concat(kept, ignore_index=True)

    def _gan_redraw(
        self, cls: Any, seed: int, index: int, batch: int, batch_size: int, moments: Any
    ) -> Callable[[int], pd.DataFrame]:
        """Draws of fresh GAN rows of ``cls`` for the floor's redraws of GAN batch ``batch``:
        through the neighbour filter and the class's moment map like the batch, each call with
        a seed of its own (one torch seed per class, batch and round)."""
        rounds = iter(range(FLOOR_ROUNDS))

        def redraw(n_rows: int) -> pd.DataFrame:
            own = child_seed(seed, index, Stream.ROWS_FLOOR, batch, next(rounds))
            parts = [rows for rows, _ in self._gan_batches(cls, n_rows, own, batch_size)]
            rows = pd.concat(parts, ignore_index=True)
            return rows if moments is None else moments.apply(rows)

        return redraw

    def _gan_batches(
        self, cls: Any, n_rows: int, seed: int, batch_size: int
    ) -> Iterator[tuple[pd.DataFrame, int]]:
        """GAN rows of ``cls`` in the model's form, batch by batch, and how many drawn rows each
        batch dropped. With the filter, a batch of ``m`` kept rows is drawn as ``3 m`` rows
        ranked by the share of their nearest real training rows that are of ``cls``; the ``m``
        highest are kept (earlier draws first among equals) in the order they were drawn. Rows
        deep among other classes go first: they are what blurs a linear model's ranking."""
        if n_rows == 0:
            return
        if not self.filter_generated:
            for _, rows in self.synthesizer.unit_batches({cls: n_rows}, seed, batch_size):
                yield rows, 0
            return
        draws = DRAWS_PER_KEPT
        for _, drawn in self.synthesizer.unit_batches(
            {cls: draws * n_rows}, seed, draws * batch_size
        ):
            keep = len(drawn) // draws
            share = self.space.neighbour_share(drawn, cls)  # (3 m,): the embedding picks columns
            kept = best_share(share, keep)
            yield drawn.iloc[kept].reset_index(drop=True), len(drawn) - keep

    def totals(self) -> dict[str, int]:
        """Rows from the GAN, from anchors, drawn GAN rows the filter dropped and GAN rows the
        moment map moved, over classes."""
        return {key: int(sum(counts.values())) for key, counts in self.origin.items()}
