"""Real vectors of every class, and the steps that put them in charge of generated ones.

Both wings generate in a continuous space: a table's rows embedded column by column
(:class:`augment.tabular.anchored.RowSpace`), an image's autoencoder codes
(:mod:`augment.image.codes`). What happens there is the same and lives here once:

- **partners** (:meth:`VectorSpace.partners`): a new vector lies on the segment between a real
  vector of its class (the anchor) and either one of the anchor's nearest same-class neighbours
  or, for a share :data:`TOWARD_CENTRE` of them, the class's centre (when it lies inside the
  class: :meth:`VectorSpace.centre_inside`);
- **the neighbour filter** (:meth:`VectorSpace.neighbour_share`): the share of a generated
  vector's nearest real vectors that are of its class, in the whitened space of the real vectors
  (their covariance, shrunk, mapped to the identity), where a vector that breaks the real ones'
  correlations is far from all of them; a sampler keeps the best third of three draws;
- **the moment map** (:func:`moment_match`): the affine map that gives generated vectors the
  mean and covariance of their class's real ones.

One nearest-neighbour search (scikit-learn's), with caps that keep it bounded on big classes:
at most :data:`ANCHOR_POOL_ROWS` anchors per class, at most :data:`CENTRE_CHECK_ROWS` rows to
judge a centre. Seeds are ``numpy.random.Generator`` objects passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from augment.core.privacy import COPY_DISTANCE, floor_distance, nearest_distances

# The share of anchored vectors drawn toward their class's centre rather than toward a
# same-class neighbour (polynom-fit-SMOTE's "star"; 0.5 measured on KEEL, benchmarks/NOTES.md).
TOWARD_CENTRE = 0.5
# At most this many vectors of a class measure how much of the class surrounds its own vectors
# (the check whether its centre lies inside it); a sample keeps the check cheap on big classes.
CENTRE_CHECK_ROWS = 2000
# At most this many vectors of a class serve as anchors (a fixed sample; their neighbours are
# searched among all of the class's vectors). The search for every row's neighbours took 15-19 s
# for a class of 50,000 rows; a few thousand anchors already give plenty of variety.
ANCHOR_POOL_ROWS = 5000
# Generated vectors drawn per vector the neighbour filter keeps (2 and 3 were measured on KEEL;
# 3 ranked better in balanced accuracy and AUC, for a few hundredths of a second).
DRAWS_PER_KEPT = 3


def whitening(points: np.ndarray) -> np.ndarray:
    """(D, D) map to coordinates where the vectors' covariance is the identity; the covariance
    is shrunk toward a scaled identity (Ledoit-Wolf), so that a few vectors, collinear or one-hot
    columns still give a finite, well-conditioned map. Identity for fewer than two vectors."""
    if len(points) < 2 or points.shape[1] == 0:
        return np.eye(points.shape[1])
    values, vectors = np.linalg.eigh(LedoitWolf().fit(points).covariance_)
    return vectors / np.sqrt(np.maximum(values, 1e-9))


def _root(matrix: np.ndarray, inverse: bool = False) -> np.ndarray:
    """The symmetric square root of a covariance (or of its inverse)."""
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, 1e-9) ** (-0.5 if inverse else 0.5)
    return (vectors * values) @ vectors.T


@dataclass
class Moments:
    """``x -> real_mean + linear (x - made_mean)``: generated vectors moved to the mean and
    covariance of real ones (in whatever units both were given in)."""

    made_mean: np.ndarray  # (D,)
    real_mean: np.ndarray  # (D,)
    linear: np.ndarray  # (D, D)

    def apply(self, made: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, D)."""
        return self.real_mean + (made - self.made_mean) @ self.linear.T


def moment_match(real: np.ndarray, made: np.ndarray) -> Moments | None:
    """The map that gives ``made`` (N, D) the mean and covariance of ``real`` (M, D), both
    covariances shrunk (Ledoit-Wolf) so that a class of a few vectors or a collapsed generator
    still gives a finite map. None when there is nothing to match: no column, or fewer than two
    real or generated vectors."""
    if real.shape[1] == 0 or len(real) < 2 or len(made) < 2:
        return None
    linear = _root(LedoitWolf().fit(real).covariance_) @ _root(
        LedoitWolf().fit(made).covariance_, inverse=True
    )
    return Moments(made.mean(0), real.mean(0), linear)


def best_share(share: np.ndarray, keep: int) -> np.ndarray:
    """Positions of the ``keep`` highest ``share`` values (earlier first among equals), in the
    order they were drawn: what the neighbour filter keeps of a batch of draws."""
    return np.sort(np.argsort(-share, kind="stable")[:keep])


@dataclass
class Partners:
    """Where each new vector comes from: places among the class's members of the anchor and the
    partner, the place ``t`` on the segment between them, and whether the partner is the
    class's centre (then ``partner`` is unused)."""

    anchor: np.ndarray  # (n,) int: places in the space's vectors
    partner: np.ndarray  # (n,) int
    t: np.ndarray  # (n,) float in [0, 1)
    central: np.ndarray  # (n,) bool


class VectorSpace:
    """Real vectors ``(N, D)`` with their labels, and the searches over them.

    Example:
        >>> space = VectorSpace(points, labels)
        >>> pick = space.partners("minority", 100, np.random.default_rng(0))
        >>> new = points[pick.anchor] + pick.t[:, None] * (points[pick.partner] - ...)
        >>> share = space.neighbour_share(new, "minority")  # (100,) in [0, 1]
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray, k_neighbors: int = 5) -> None:
        self.points = points
        self.labels = labels
        self.k_neighbors = k_neighbors
        self.whitening = whitening(points)  # (D, D)
        self._index: NearestNeighbors | None = None
        self._nearest: NearestNeighbors | None = None
        self._members_of: dict[Any, np.ndarray] = {}
        self._is_member: dict[Any, np.ndarray] = {}
        self._neighbours: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._inside: dict[Any, bool] = {}
        self._class_index: dict[Any, NearestNeighbors] = {}
        self._floors: dict[tuple[Any, float], float] = {}

    def members(self, label: Any) -> np.ndarray:
        """The places of the real vectors of class ``label``; found once per class."""
        if label not in self._members_of:
            self._members_of[label] = np.flatnonzero(self.labels == label)
        return self._members_of[label]

    def anchors(self, label: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The vectors of class ``label`` (members), the anchors among them (all, or a fixed
        sample of :data:`ANCHOR_POOL_ROWS` in a bigger class; places among the members, in
        order) and, per anchor, its ``k_neighbors`` nearest same-class vectors (places among
        the members): ((members,), (anchors,), (anchors, k)). Computed once per class."""
        if label not in self._neighbours:
            members = self.members(label)
            pool = np.arange(len(members))
            if len(members) > ANCHOR_POOL_ROWS:
                pick = np.random.default_rng(0).choice(len(members), ANCHOR_POOL_ROWS, False)
                pool = np.sort(pick)
            k = max(0, min(self.k_neighbors, len(members) - 1))
            nearest = np.zeros((len(pool), 0), dtype=np.int64)
            if k > 0:
                points = self.points[members]
                # column 0 of the neighbour list is the anchor itself (distance 0)
                nearest = (
                    NearestNeighbors(n_neighbors=k + 1)
                    .fit(points)
                    .kneighbors(points[pool], return_distance=False)[:, 1:]
                )
            self._neighbours[label] = (members, pool, nearest)
        return self._neighbours[label]

    def partners(
        self, label: Any, n: int, rng: np.random.Generator, toward_centre: float | None = None
    ) -> Partners:
        """Anchors and partners of ``n`` new vectors of class ``label`` (which must have a real
        vector): the anchor uniform among the class's anchors; for a share ``toward_centre``
        (default :data:`TOWARD_CENTRE`) the partner is the class's centre (none when the centre
        lies outside the class), else one of the anchor's nearest same-class vectors. A class of
        one vector: every new vector is that vector (``t`` = 0)."""
        share = TOWARD_CENTRE if toward_centre is None else toward_centre
        members, pool, nearest = self.anchors(label)
        k = nearest.shape[1]
        drawn = rng.integers(len(pool), size=n)
        central = rng.random(n) < share
        # e.g. a class in two clumps, others between them
        if share > 0 and not self.centre_inside(label):
            central[:] = False
        anchor = pool[drawn]  # places among the members
        if k == 0:
            partner, t = anchor, np.zeros(n)
        else:
            partner = nearest[drawn, rng.integers(k, size=n)]
            t = rng.random(n)
        return Partners(members[anchor], members[partner], t, central)

    def interpolate(
        self, label: Any, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, Partners]:
        """``n`` new vectors (n, D) of class ``label`` on the segments of :meth:`partners`."""
        pick = self.partners(label, n, rng)
        start = self.points[pick.anchor]
        end = np.where(pick.central[:, None], self.centre(label), self.points[pick.partner])
        return start + pick.t[:, None] * (end - start), pick

    def nearest(self, points: np.ndarray) -> np.ndarray:
        """(N,) the place of each vector's nearest real vector (any class, not whitened)."""
        if self._nearest is None:
            self._nearest = NearestNeighbors(n_neighbors=1).fit(self.points)
        return self._nearest.kneighbors(points, return_distance=False)[:, 0]

    def centre(self, label: Any) -> np.ndarray:
        """(D,) the mean of the class's real vectors."""
        return self.points[self.members(label)].mean(axis=0)

    def whitened_index(self) -> NearestNeighbors:
        """The nearest-neighbour index over all real vectors, whitened (built once)."""
        if self._index is None:
            k = min(self.k_neighbors, len(self.points))
            self._index = NearestNeighbors(n_neighbors=k).fit(self.points @ self.whitening)
        return self._index

    def neighbour_share(self, points: np.ndarray, label: Any) -> np.ndarray:
        """(N,) the share of each vector's ``k_neighbors`` nearest real vectors (whitened) that
        are of class ``label``; 0 means the vector sits among other classes only."""
        if len(points) == 0:
            return np.zeros(0)
        nearest = self.whitened_index().kneighbors(points @ self.whitening, return_distance=False)
        return self.is_member(label)[nearest].mean(axis=1)

    def is_member(self, label: Any) -> np.ndarray:
        """(N,) bool: which real vectors are of class ``label``; found once per class (labels
        are often Python strings, slow to compare on every batch)."""
        if label not in self._is_member:
            self._is_member[label] = np.asarray(self.labels == label, dtype=bool)
        return self._is_member[label]

    def distance_to_class(self, points: np.ndarray, label: Any) -> np.ndarray:
        """(N,) the distance of each vector to its nearest real vector of class ``label`` (inf
        when the class has none); the class's search is built once."""
        members = self.points[self.members(label)]
        if len(members) and label not in self._class_index:
            self._class_index[label] = NearestNeighbors().fit(members)
        index = self._class_index.get(label)
        return nearest_distances(members, points, index=index)[:, 0]

    def floor(self, label: Any, quantile: float) -> float:
        """The privacy floor of class ``label``: the ``quantile`` of its real vectors' distances
        to their nearest other vector of the class (:func:`augment.core.privacy.floor_distance`);
        found once per class."""
        key = (label, quantile)
        if key not in self._floors:
            self._floors[key] = floor_distance(self.points[self.members(label)], quantile)
        return self._floors[key]

    def floor_margin(self, points: np.ndarray, label: Any, quantile: float) -> np.ndarray:
        """(N,) the margin of each vector over the class's privacy floor (:meth:`floor`): its
        distance to the nearest real vector of the class minus the floor. Negative: too close,
        to be redrawn; an exact copy is always too close, even where the floor is 0."""
        distance = self.distance_to_class(points, label)
        margin = distance - self.floor(label, quantile)
        return np.where(distance < COPY_DISTANCE, -np.inf, margin)

    def centre_inside(self, label: Any) -> bool:
        """Whether the centre of class ``label`` lies inside the class: among its nearest real
        vectors (whitened) the class's share is at least half of what it is, on average, around
        the class's own vectors (each without itself; at most :data:`CENTRE_CHECK_ROWS` of them,
        a fixed sample). A class in two clumps with other classes between them fails."""
        if label not in self._inside:
            members = self.members(label)
            k = min(self.k_neighbors, len(self.points) - 1)
            if len(members) < 2 or k < 1:
                self._inside[label] = len(members) > 0
                return self._inside[label]
            index = self.whitened_index()
            whitened = self.points[members] @ self.whitening
            centre = whitened.mean(axis=0, keepdims=True)
            around_centre = self.labels[index.kneighbors(centre, k, return_distance=False)]
            if len(whitened) > CENTRE_CHECK_ROWS:  # a big class: its share from a sample
                pick = np.random.default_rng(0).choice(len(whitened), CENTRE_CHECK_ROWS, False)
                whitened = whitened[np.sort(pick)]
            # column 0 of a real vector's neighbours is the vector itself
            around_rows = self.labels[index.kneighbors(whitened, k + 1, return_distance=False)]
            centre_share = (around_centre == label).mean()
            rows_share = (around_rows[:, 1:] == label).mean()
            # half: the centre may sit where the class thins out a little (shares move in steps
            # of 1/k); it fails where the class is split around other classes
            self._inside[label] = bool(centre_share >= rows_share / 2)
        return self._inside[label]
