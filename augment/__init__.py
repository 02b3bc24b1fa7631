"""augment: fix class imbalance with conditional GANs and prove that the synthetic rows help.

Public API::

    from augment import GANOverSampler, ImageGANOverSampler, load_config, run_job
"""

__version__ = "0.1.0"

from augment.core.config import JobConfig, load_config  # noqa: E402
from augment.core.errors import (  # noqa: E402
    AugmentError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
    OutputError,
    ValidationFailed,
)
from augment.image.sampler import ImageGANOverSampler  # noqa: E402
from augment.tabular.sampler import GANOverSampler  # noqa: E402
from augment.tabular.synthesizer import load_synthesizer  # noqa: E402


def run_job(config, raise_on_gate: bool = False):
    """Run a balancing job in-process; see :func:`augment.pipeline.job.run_job`."""
    from augment.pipeline.job import run_job as _run_job

    return _run_job(config, raise_on_gate=raise_on_gate)


__all__ = [
    "AugmentError",
    "ConfigError",
    "DataError",
    "DeviceError",
    "GANOverSampler",
    "ImageGANOverSampler",
    "JobConfig",
    "ModelFileError",
    "OutputError",
    "ValidationFailed",
    "load_config",
    "load_synthesizer",
    "run_job",
]
