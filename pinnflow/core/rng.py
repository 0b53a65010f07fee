"""PRNG helpers shared by stochastic operators, residuals and losses."""

from __future__ import annotations

import jax

__all__ = ["split_or_none", "Stream", "stream_key"]


def split_or_none(key: jax.Array | None, n: int) -> list:
    """n independent keys from `key`, or n Nones for a deterministic computation (`key=None`)."""
    return [None] * n if key is None else list(jax.random.split(key, n))


class Stream:
    """Offsets added to a run's seed for its independent random streams (so a run is reproducible from one
    seed). Fixed keys that must not depend on the seed use `FIXED_*` values directly as PRNGKey seeds."""

    TRAIN = 0  # collocation batches, Hutchinson probes, trajectory mixing of Adam training
    EVALUATE = 1  # evaluation samples and exact reference samples
    TRAJECTORIES = 7  # trajectory-cache refreshes (App. D.1)
    FINETUNE = 17  # Gauss–Newton batches
    LBFGS = 31  # L-BFGS batches
    TRAINING_SET = 101  # a diffusion model's fixed training set of data draws (`data.size`)
    FIXED_PRIOR_IS = 20240  # the prior importance-sampling estimate of log Z for z_init = "prior_is"
    FIXED_DOMAIN_CHECK = 1  # the points on which a target density is checked before compiling


def stream_key(seed: int, stream: int) -> jax.Array:
    """The PRNG key of `stream` (a `Stream` offset) for a run seeded with `seed`."""
    return jax.random.PRNGKey(seed + stream)
