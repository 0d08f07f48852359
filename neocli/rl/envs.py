"""Gymnasium environments: making them with clear errors, and their generator state (exact resume)."""
from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from ..errors import NeoError


def gym_module():
    """The gymnasium module, or a clear error naming the extra to install."""
    try:
        import gymnasium
    except ImportError:
        raise NeoError("reinforcement learning needs gymnasium: pip install 'neocli[rl]'") from None
    return gymnasium


def make_env(env_id: str, **kwargs: Any):
    """``gymnasium.make(env_id, **kwargs)`` with failures turned into a :class:`NeoError`.

    Unknown ids, deprecated versions and environments whose optional dependencies
    are missing all give one ``NeoError`` whose message says which.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str, got {type(env_id).__name__}")
    gym = gym_module()
    try:
        with warnings.catch_warnings(record=True) as caught:
            # gymnasium prints its deprecation notices with terminal colour codes;
            # say them in one plain line instead.
            warnings.simplefilter("always")
            env = gym.make(env_id, **kwargs)
        for w in caught:
            if issubclass(w.category, DeprecationWarning):
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(w.message)).strip()
                warnings.warn(f"{env_id}: {text}", DeprecationWarning, stacklevel=2)
        return env
    except gym.error.Error as e:
        raise NeoError(f"cannot make environment '{env_id}': {e}") from None
    except ModuleNotFoundError as e:  # "module:Env-v0" ids import a module first
        raise NeoError(f"cannot make environment '{env_id}': {e}") from None


def env_rng_state(env: Any) -> dict[str, Any] | None:
    """The environment's numpy generator state (JSON-ready), or None if it has none."""
    rng = getattr(getattr(env, "unwrapped", env), "np_random", None)
    if not isinstance(rng, np.random.Generator):
        return None
    return rng.bit_generator.state


def set_env_rng_state(env: Any, state: dict[str, Any]) -> None:
    """Give the environment a generator with ``state`` (from :func:`env_rng_state`)."""
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise NeoError(f"invalid environment generator state: {state!r}")
    try:
        bg = getattr(np.random, state["bit_generator"])()
        bg.state = state
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        raise NeoError(f"invalid environment generator state: {e}") from None
    env.unwrapped.np_random = np.random.Generator(bg)


__all__ = ["make_env", "gym_module", "env_rng_state", "set_env_rng_state"]
