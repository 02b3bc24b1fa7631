"""A probe loaded into every torchrun worker by the DDP tests (this folder goes on PYTHONPATH).

Inactive unless AUGMENT_PROBE_DIR is set and the process is a torchrun worker (RANK is set).
It records, per rank, into ``$AUGMENT_PROBE_DIR/rank-<r>.json`` at exit:

- ``writes``: every file opened for writing, renamed, made or removed under ``AUGMENT_PROBE_ROOT``
  (Python's audit hooks see these in any module: torch.save, json, os.replace, shutil);
- ``fits``: for every ``run_training`` call, the steps, the step resumed from and a SHA-256 of the
  trainer's parameters after training (generator, critic or discriminator, EMA).

``AUGMENT_PROBE_CRASH_AT=<step>`` makes rank 0 raise at that step (a crash mid-training).
"""

import os

if os.environ.get("AUGMENT_PROBE_DIR") and "RANK" in os.environ:
    import atexit
    import hashlib
    import json
    import sys
    from pathlib import Path

    _rank = int(os.environ["RANK"])
    _root = str(Path(os.environ["AUGMENT_PROBE_ROOT"]).resolve())
    _record = {"rank": _rank, "pid": os.getpid(), "writes": [], "fits": []}
    _recording = [True]
    _CHANGES = ("os.rename", "os.mkdir", "os.remove", "shutil.rmtree")

    def _under_root(path) -> bool:
        try:
            return str(Path(os.fsdecode(path)).resolve()).startswith(_root)
        except (TypeError, ValueError, OSError):
            return False

    def _audit(event, args):
        if not _recording[0]:
            return
        if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
            mode, flags = args[1] or "r", args[2] or 0
            writing = any(c in str(mode) for c in "wax+") or flags & (
                os.O_WRONLY | os.O_RDWR | os.O_CREAT
            )
            if writing and _under_root(args[0]):
                _record["writes"].append(["open", os.fsdecode(args[0])])
        elif event in _CHANGES and args:
            # a rename is recorded by where it lands (atomic writes rename a temporary file)
            target = args[1] if event == "os.rename" else args[0]
            if _under_root(target):
                _record["writes"].append([event, os.fsdecode(target)])

    sys.addaudithook(_audit)

    def _parameter_hash(trainer) -> str:
        digest = hashlib.sha256()
        modules = {"generator": trainer.model.generator}
        for name in ("critic", "discriminator"):
            if hasattr(trainer, name):
                modules[name] = getattr(trainer, name)
        if getattr(trainer.model, "ema", None) is not None:
            modules["ema"] = trainer.model.ema
        for module_name, module in modules.items():
            for name, tensor in module.named_parameters():
                digest.update(f"{module_name}.{name}".encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    import augment.core.synthesizer
    import augment.core.train

    _real_run_training = augment.core.train.run_training
    _crash_at = os.environ.get("AUGMENT_PROBE_CRASH_AT")

    def _probed_run_training(trainer, steps, **kwargs):
        if _crash_at is not None and _rank == 0:
            real_step = trainer.train_step

            def crashing_step(step):
                if step == int(_crash_at):
                    raise RuntimeError(f"probe: simulated crash at step {step}")
                return real_step(step)

            trainer.train_step = crashing_step
        result = _real_run_training(trainer, steps, **kwargs)
        _record["fits"].append(
            {
                "steps": result.steps,
                "resumed_from": result.resumed_from,
                "parameters": _parameter_hash(trainer),
            }
        )
        return result

    augment.core.synthesizer.run_training = _probed_run_training  # every kind's fit calls it

    @atexit.register
    def _dump() -> None:
        _recording[0] = False
        out = Path(os.environ["AUGMENT_PROBE_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rank-{_rank}.json").write_text(json.dumps(_record))
