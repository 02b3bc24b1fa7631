"""Worker of the DDP gradient test, started in two processes by torch.multiprocessing.spawn.

Kept apart from the test module so that each process imports only what it needs.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch


def gradient_worker(rank: int, world: int, port: int, scratch: str) -> None:
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

    from augment.core import ddp
    from augment.core.cgan import GANSettings, TrainSettings, critic_gradients
    from augment.tabular.cgan import TabularCGAN
    from augment.tabular.schema import infer_schema
    from augment.tabular.transform import TabularEncoder

    ddp.init("cpu")
    try:
        # an error on rank 0 (say, the output is in use) reaches every rank: none waits forever
        from augment.core.errors import OutputError

        def refuse() -> None:
            raise OutputError("output x is in use by another augment job")

        try:
            ddp.from_main(refuse)
        except OutputError as error:
            assert "in use" in str(error)
        else:
            raise AssertionError(f"rank {rank} did not get rank 0's error")
        assert ddp.from_main(lambda: f"from rank {ddp.rank()}") == "from rank 0"

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

        def build():
            model = TabularCGAN(
                encoder, ["p", "q"], GANSettings(generator_dims=(16,), discriminator_dims=(16,))
            )
            trainer = model.make_trainer(
                features,
                frame["label"].tolist(),
                TrainSettings(batch_size=16, seed=3),
                torch.device("cpu"),
            )
            return model, trainer

        model, trainer = build()
        assert isinstance(trainer.ddp_generator, torch.nn.parallel.DistributedDataParallel)

        reals, conds = trainer._real_batch()
        with torch.no_grad():
            fakes = trainer._fake(conds)
        real_in, fake_in = torch.cat([reals, conds], 1), torch.cat([fakes, conds], 1)
        gathered = [torch.empty_like(real_in) for _ in range(world)]
        dist.all_gather(gathered, real_in)
        assert not torch.equal(gathered[0], gathered[1])  # each rank drew its own batch

        # the critic's hand-made gradients (penalty included) are averaged over the ranks
        critic = trainer.critic
        mixing = trainer.rng.get_state()  # the penalty draws its mixing weights from it
        trainer.critic_gradients(real_in, fake_in, penalty=True)
        reduced = [p.grad.clone() for p in critic.parameters()]
        trainer.rng.set_state(mixing)
        blend = trainer.penalty_blend(real_in, fake_in)  # the same blends
        critic_gradients(critic, real_in, fake_in, blend, trainer.penalty_weight)  # this rank alone
        differs = False
        for local, averaged in zip(critic.parameters(), reduced, strict=True):
            expected = local.grad.clone()
            dist.all_reduce(expected)
            torch.testing.assert_close(averaged, expected / world, rtol=1e-5, atol=1e-6)
            differs = differs or not torch.allclose(local.grad, averaged)
        assert differs  # the ranks' own gradients did differ: the average is not trivial
        critic.zero_grad(set_to_none=True)

        # training keeps the replicas identical (parameters, and so the optimizer states)
        def parameters(model, trainer) -> torch.Tensor:
            modules = (model.generator, trainer.critic)
            return torch.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()])

        def same_on_every_rank(flat: torch.Tensor) -> bool:
            copies = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(copies, flat)
            return all(torch.equal(copies[0], other) for other in copies[1:])

        from augment.core.train import TrainingLoop, run_training

        model, trainer = build()
        run_training(trainer, 12)
        uninterrupted = parameters(model, trainer)
        assert same_on_every_rank(uninterrupted)

        # resume: 6 steps, checkpoint (rank 0 writes, with every rank's random streams), then a
        # fresh trainer on every rank continues from what rank 0 reads: the same model as above
        checkpoint = os.path.join(scratch, "unit.pt")
        run_training(build()[1], 6, TrainingLoop(checkpoint_path=checkpoint))
        model, trainer = build()
        result = run_training(trainer, 12, TrainingLoop(checkpoint_path=checkpoint))
        assert result.resumed_from == 6 and result.steps == 12 and len(result.history) == 12
        assert torch.equal(parameters(model, trainer), uninterrupted)
    finally:
        ddp.shutdown()
