"""augment: fix class imbalance with conditional GANs and prove that the synthetic rows help.

Public API::

    from augment import GANOverSampler, ImageGANOverSampler, load_config, run_job
    from augment import ShardDataset   # a torch Dataset over a finished run's shards
"""

from augment.core import __version__
from augment.core.config import JobConfig
from augment.core.errors import (
    AugmentError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
    OutputError,
    ValidationFailed,
)
from augment.image.sampler import ImageGANOverSampler
from augment.pipeline.config import load_config
from augment.pipeline.dataset import ShardDataset
from augment.pipeline.registry import load_synthesizer
from augment.tabular.sampler import GANOverSampler


def run_job(config, raise_on_gate: bool = False):
    """Run a balancing job in-process; see :func:`augment.pipeline.job.run_job`."""
    from augment.pipeline.job import run_job as _run_job

    return _run_job(config, raise_on_gate=raise_on_gate)


__all__ = [
    "__version__",
    "AugmentError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "GANOverSampler",
    "ImageGANOverSampler",
    "JobConfig",
    "ModelFileError",
    "OutputError",
    "ShardDataset",
    "ValidationFailed",
    "load_config",
    "load_synthesizer",
    "run_job",
]
