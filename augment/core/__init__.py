"""What every kind of data shares: config base, errors, balance plan, device, optimiser, the
training loop, safe model files, storage, cache, the shard commit protocol, generation, scoring,
and the :class:`~augment.core.modality.Modality` contract that a kind implements.

``core`` imports neither wing (``augment.tabular``, ``augment.image``) nor the pipeline; the
import-linter contracts in pyproject.toml hold that.
"""

__version__ = "0.1.0"
