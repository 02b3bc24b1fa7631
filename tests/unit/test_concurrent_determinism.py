"""Determinism under concurrency: samplers fitted side by side in threads (as ``balance_many_flow``
runs jobs) give exactly the bytes each gives alone.

Every model's first weights, noise and batches come from its own seeded generators
(:mod:`augment.core.weights`); nothing reads or seeds torch's global generator. When models were
initialised under ``torch.manual_seed`` (one lock per kind of model), a tabular GAN and an image
network initialised at the same moment took each other's numbers.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

from augment import GANOverSampler, ImageGANOverSampler
from tests.conftest import IMAGE_FAST, small_digits

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TABLE_FAST = {"steps": 6, "batch_size": 16, "generator_dims": (16,), "discriminator_dims": (16,)}
_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding, nn.BatchNorm2d)


def _table() -> tuple[pd.DataFrame, pd.Series]:
    bunch = load_breast_cancer(as_frame=True)
    target = bunch.target.to_numpy()
    rows = np.concatenate([np.flatnonzero(target == 0)[:25], np.flatnonzero(target == 1)[:75]])
    return bunch.data.iloc[rows].reset_index(drop=True), bunch.target.iloc[rows].reset_index(
        drop=True
    )


def _tabular_job(seed: int) -> bytes:
    X, y = _table()
    X_res, y_res = GANOverSampler(random_state=seed, **TABLE_FAST).fit_resample(X, y)
    return X_res.to_numpy().tobytes() + np.asarray(y_res).tobytes()


def _image_job(seed: int) -> bytes:
    # "auto": the image GAN, the autoencoder, the GAN over its codes and the classifier that
    # chooses the recipe (dropout included) all train
    images, labels = small_digits((30, 10, 6))
    sampler = ImageGANOverSampler(random_state=seed, recipe="auto", **IMAGE_FAST)
    X_res, y_res = sampler.fit_resample(images, labels)
    return X_res.tobytes() + np.asarray(y_res).tobytes()


@pytest.fixture
def interleaved_construction(monkeypatch):
    """Makes two threads build their networks at the same time, layer by layer: each thread's
    first layer waits for the other's at a barrier, and every layer yields the GIL for 2 ms after
    its constructor, so the other thread builds in between. Without this the two threads' model
    constructions (microseconds) seldom overlap, and a race would show only now and then."""
    barrier = threading.Barrier(2)
    met = threading.local()

    def slowed(cls):
        original = cls.__init__

        def __init__(self, *args, **kwargs):
            if not getattr(met, "done", False):
                met.done = True
                barrier.wait(timeout=120)
            original(self, *args, **kwargs)
            time.sleep(0.002)

        monkeypatch.setattr(cls, "__init__", __init__)

    for cls in _LAYERS:
        slowed(cls)


def _side_by_side(jobs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(job, seed) for job, seed in jobs]
        return [future.result(timeout=600) for future in futures]


def test_a_tabular_and_an_image_job_in_threads_give_the_bytes_each_gives_alone(request):
    jobs = [(_tabular_job, 3), (_image_job, 5)]
    alone = [job(seed) for job, seed in jobs]
    request.getfixturevalue("interleaved_construction")
    together = _side_by_side(jobs)
    assert together[0] == alone[0], "the tabular job's rows changed beside the image job"
    assert together[1] == alone[1], "the image job's images changed beside the tabular job"


def test_fitting_in_threads_leaves_the_global_generator_alone(interleaved_construction):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _side_by_side([(_tabular_job, 3), (_image_job, 5)])
    assert torch.equal(torch.get_rng_state(), before)
