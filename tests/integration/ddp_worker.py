"""Worker of the DDP gradient test, started in two processes by torch.multiprocessing.spawn.

Kept apart from the test module so that each process imports only what it needs.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch


def gradient_worker(rank: int, world: int, port: int) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    from augment import ddp
    from augment.data.schema import infer_schema
    from augment.models.tabular_cgan import GANSettings, TabularCGAN, TrainSettings
    from augment.transforms.tabular import TabularEncoder

    ddp.init("cpu")
    try:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(
            {
                "x": rng.normal(size=60),
                "y": rng.normal(size=60),
                "c": rng.choice(["a", "b"], 60),
                "label": ["p"] * 40 + ["q"] * 20,
            }
        )
        schema = infer_schema(frame, "label")
        features = frame[schema.names]
        encoder = TabularEncoder(3, True, "gmm").fit(features, schema)
        model = TabularCGAN(
            encoder, ["p", "q"], GANSettings(generator_dims=(16,), discriminator_dims=(16,))
        )
        trainer = model.make_trainer(
            features,
            frame["label"].tolist(),
            TrainSettings(batch_size=16, seed=3),
            torch.device("cpu"),
        )
        assert isinstance(trainer.ddp_critic, torch.nn.parallel.DistributedDataParallel)

        reals, conds = trainer._real_batch()
        with torch.no_grad():
            fakes = trainer._fake(conds)
        real_in, fake_in = torch.cat([reals, conds], 1), torch.cat([fakes, conds], 1)
        gathered = [torch.empty_like(real_in) for _ in range(world)]
        dist.all_gather(gathered, real_in)
        assert not torch.equal(gathered[0], gathered[1])  # each rank drew its own batch

        def critic_loss(scored_by: torch.nn.Module) -> torch.Tensor:
            scores = scored_by(torch.cat([real_in, fake_in]))
            half = scores.shape[0] // 2
            return (
                scores[half:].mean()
                - scores[:half].mean()
                + 10 * trainer._gradient_penalty(real_in, fake_in)
            )

        critic = trainer.critic
        mixing = trainer.rng.get_state()  # the penalty draws its mixing weights from it
        critic.zero_grad(set_to_none=True)
        critic_loss(trainer.ddp_critic).backward()  # DDP reduces, penalty included
        reduced = [p.grad.clone() for p in critic.parameters()]
        critic.zero_grad(set_to_none=True)
        trainer.rng.set_state(mixing)
        critic_loss(critic).backward()  # this rank alone
        differs = False
        for local, averaged in zip(critic.parameters(), reduced, strict=True):
            expected = local.grad.clone()
            dist.all_reduce(expected)
            torch.testing.assert_close(averaged, expected / world, rtol=1e-5, atol=1e-6)
            differs = differs or not torch.allclose(local.grad, averaged)
        assert differs  # the ranks' own gradients did differ: the average is not trivial
        critic.zero_grad(set_to_none=True)

        # a few full steps keep the replicas identical, parameters and optimizer state
        for step in range(4):
            trainer.train_step(step)
        flat = torch.cat(
            [p.detach().reshape(-1) for m in (model.generator, critic) for p in m.parameters()]
        )
        copies = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(copies, flat)
        assert torch.equal(copies[0], copies[1])
    finally:
        ddp.shutdown()
