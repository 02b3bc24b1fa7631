"""Image sizes: which sides the networks take, and the working size of the cheap networks.

No torch here: the job config checks ``data.size`` with :func:`base_grid` when it is read.

- The generating networks (the pixel GAN and the shared autoencoder's decoder) start from a
  ``s0 x s0`` grid, ``4 <= s0 <= 7``, and double it ``k`` times: ``size = s0 * 2**k``, from 8 to
  256 px (:func:`base_grid`).
- Above :data:`WORK_SIZE` the autoencoder, the validation CNN and its features see images
  area-averaged down to :func:`work_size` (halved until at most 64 px): their cost grows with the
  pixels (16 times more at 256 px than at 64), while what they must tell apart survives at 64 px.
  The autoencoder loses nothing by it: a generated image gets back, at full size, the detail the
  decoder misses on its real parents (:mod:`augment.image.latent`).
"""

from __future__ import annotations

MIN_SIZE, MAX_SIZE = 8, 256
# The largest side the autoencoder and the validation CNN run at (see the module docstring).
WORK_SIZE = 64


def supported_sizes() -> list[int]:
    """Every side :func:`base_grid` accepts, ascending: 8, 10, 12, ..., 224, 256."""
    sizes = {s0 * 2**k for s0 in range(4, 8) for k in range(1, 8)}
    return sorted(s for s in sizes if MIN_SIZE <= s <= MAX_SIZE)


def base_grid(size: int) -> tuple[int, int]:
    """``(s0, k)`` with ``size == s0 * 2**k``, ``4 <= s0 <= 7`` and ``k >= 1``.

    Raises:
        ValueError: the size is outside 8..256 or not of that form (e.g. 9, 36 or 100).
    """
    if MIN_SIZE <= size <= MAX_SIZE:
        s0, k = size, 0
        while s0 > 7 and s0 % 2 == 0:
            s0, k = s0 // 2, k + 1
        if 4 <= s0 <= 7 and k >= 1:
            return s0, k
    raise ValueError(
        f"image size {size} is not supported; use a size from {MIN_SIZE} to {MAX_SIZE} that is "
        f"4-7 times a power of two ({', '.join(str(s) for s in supported_sizes())})"
    )


def work_size(size: int, limit: int | None = WORK_SIZE) -> int:
    """``size`` halved (rounding up) until it is at most ``limit``; ``size`` itself when it
    already is, or when ``limit`` is None. 28 -> 28, 128 -> 64, 256 -> 64, 160 -> 40."""
    if limit is None:
        return size
    while size > limit:
        size = -(-size // 2)
    return size
