"""The episode runner: drives an agent through a gymnasium environment, and learning curves."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import NeoError
from ..hierarchy import Hierarchy
from .agent import Protocol, check_ports
from .encoding import Encoding


@dataclass
class Episode:
    """The outcome of one episode: the environment's undiscounted return and length."""

    ret: float
    length: int
    terminated: bool


class Runner:
    """Drives a hierarchy through a gymnasium environment, episode by episode.

    Each environment step does ``h.step(observation CSDRs + previous action CSDRs,
    learn, reward)`` where ``reward`` belongs to the previous transition, then takes
    the actor's action (``get_prediction_cis`` of every action port; with
    ``greedy=True`` the most probable cell instead, which needs learning off).

    ``seed`` is passed to the first ``env.reset``; later resets let the
    environment's generator continue, so the same seed repeats a run exactly.
    The runner keeps the previous action and the pending reward between episodes
    (the D16 protocol needs them); :meth:`carry` / :meth:`set_carry` save and restore
    them, and :func:`env_rng_state` / :func:`set_env_rng_state` the environment's
    generator, for exact resumes.
    """

    def __init__(self, env: Any, hierarchy: Hierarchy, encoding: Encoding, protocol: Protocol | None = None,
                 seed: int | None = None) -> None:
        if not isinstance(hierarchy, Hierarchy):
            raise TypeError(f"hierarchy must be a neocli.Hierarchy, got {type(hierarchy).__name__}")
        if not isinstance(encoding, Encoding):
            raise TypeError(f"encoding must be an Encoding, got {type(encoding).__name__}")
        if protocol is None:
            protocol = Protocol()
        if not isinstance(protocol, Protocol):
            raise TypeError(f"protocol must be a Protocol, got {type(protocol).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise NeoError(f"seed must be an integer >= 0, got {seed!r}")
        encoding.check_env(env)
        check_ports(hierarchy, encoding)
        for p in encoding.image_parts:
            if p.encoder is None:
                raise NeoError("the encoding's image encoder was not built: use build_hierarchy or load_agent")
        self.env = env
        self.h = hierarchy
        self.encoding = encoding
        self.protocol = protocol
        self._next_seed = None if seed is None else int(seed)
        self._prev = encoding.action.zeros()
        self._pending = 0.0
        self._mix_rng = np.random.default_rng(seed)
        self.episodes = 0
        self.steps = 0

    # -- carried state ---------------------------------------------------------
    def carry(self) -> dict[str, Any]:
        """What the next episode inherits (previous action, pending reward), as JSON."""
        return {"action": [c.tolist() for c in self._prev], "reward": self._pending}

    def set_carry(self, d: Any) -> None:
        """Restore :meth:`carry` output (validated against the action ports)."""
        if not isinstance(d, dict):
            raise NeoError(f"invalid carried RL state: {d!r}")
        sizes = self.encoding.action.io_sizes
        act = d.get("action")
        if not isinstance(act, list) or len(act) != len(sizes):
            raise NeoError(f"invalid carried action {act!r}: expected {len(sizes)} CSDR(s)")
        prev = []
        for a, (w, hh, z) in zip(act, sizes):
            v = np.asarray(a, dtype=np.int64).reshape(-1)
            if v.size != w * hh or (v < 0).any() or (v >= z).any():
                raise NeoError(f"invalid carried action {a!r} for a {w}x{hh}x{z} port")
            prev.append(v.astype(np.int32))
        r = d.get("reward", 0.0)
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise NeoError(f"invalid carried reward {r!r}")
        self._prev, self._pending = prev, float(r)

    # -- stepping ------------------------------------------------------------------
    def _act(self, greedy: bool) -> list[np.ndarray]:
        out = []
        for i, (w, hh, z) in zip(self.encoding.action_ios, self.encoding.action.io_sizes):
            if greedy:
                acts = np.asarray(self.h.get_prediction_acts(i)).reshape(w * hh, z)
                out.append(acts.argmax(axis=1).astype(np.int32))
            else:
                out.append(np.asarray(self.h.get_prediction_cis(i), dtype=np.int32).copy())
        return out

    def run_episode(self, learn: bool = True, *, greedy: bool = False, teacher: Callable[[Any], Any] | None = None,
                    mimic: float = 0.0, teacher_control: float = 1.0, max_steps: int | None = None) -> Episode:
        """Play one episode and return its :class:`Episode`.

        ``teacher(obs) -> action``: the hierarchy's action port is given the
        teacher's action (imitation, with ``mimic`` > 0 as the imitation weight,
        spec §7.3). ``teacher_control`` is the probability that the environment
        executes the teacher's action at a step (1: behaviour cloning, the agent's
        own choice is ignored); otherwise it executes the agent's action, and the
        teacher's only labels the state (0: DAgger style, so the agent also learns
        what to do in the states its own mistakes lead to). The draws come from a
        generator seeded with the runner's ``seed``.
        ``max_steps`` ends the episode early (counted as a truncation).
        """
        if greedy and learn:
            raise NeoError("greedy actions need learning off: while learning, the actor's probabilities "
                           "describe the last replayed sample, not the current observation")
        if teacher is not None and not callable(teacher):
            raise TypeError("teacher must be a callable obs -> action")
        if isinstance(mimic, bool) or not isinstance(mimic, (int, float)) or not math.isfinite(mimic):
            raise NeoError(f"mimic must be a finite number, got {mimic!r}")
        if isinstance(teacher_control, bool) or not isinstance(teacher_control, (int, float)) \
                or not 0.0 <= teacher_control <= 1.0:
            raise NeoError(f"teacher_control must be a probability in [0, 1], got {teacher_control!r}")
        if max_steps is not None and max_steps < 1:
            raise NeoError(f"max_steps must be >= 1, got {max_steps}")
        seed, self._next_seed = self._next_seed, None
        obs, _ = self.env.reset(seed=seed)
        if self.protocol.clear_state:
            self.h.clear_state()
            self._prev = self.encoding.action.zeros()
            self._pending = 0.0
        total, n, terminated = 0.0, 0, False
        while True:
            inputs = self.encoding.encode_observation(obs, learn) + self._prev
            self.h.step(inputs, learn, self._pending, float(mimic))
            if teacher is not None:
                label = teacher(obs)
                cis = self.encoding.action.encode(label)
                if teacher_control >= 1.0 or self._mix_rng.random() < teacher_control:
                    action = label
                else:
                    action = self.encoding.action.decode(self._act(greedy))
            else:
                cis = self._act(greedy)
                action = self.encoding.action.decode(cis)
            obs, r, terminated, truncated, _ = self.env.step(action)
            total += float(r)
            n += 1
            self._pending = self.protocol.reward(r, bool(terminated))
            self._prev = cis
            if terminated or truncated or (max_steps is not None and n >= max_steps):
                break
        if self.protocol.clear_state:
            # Deliver the last transition's reward before the next clear forgets it.
            inputs = self.encoding.encode_observation(obs, learn) + self._prev
            self.h.step(inputs, learn, self._pending, float(mimic))
            self._pending = 0.0
        self.episodes += 1
        self.steps += n
        return Episode(total, n, bool(terminated))

    def run(self, episodes: int, learn: bool = True, callback: Callable[[int, Episode], Any] | None = None,
            **kwargs: Any) -> list[float]:
        """Play ``episodes`` episodes; return their returns. ``callback(i, episode)`` after each."""
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 0:
            raise NeoError(f"episodes must be an integer >= 0, got {episodes!r}")
        out = []
        for i in range(int(episodes)):
            ep = self.run_episode(learn, **kwargs)
            out.append(ep.ret)
            if callback is not None:
                callback(i, ep)
        return out


def moving_average(returns: Sequence[float], window: int = 20) -> list[float]:
    """The mean of the last ``window`` returns at each episode (fewer at the start)."""
    if window < 1:
        raise NeoError(f"window must be >= 1, got {window}")
    c = np.cumsum(np.asarray(returns, dtype=np.float64))
    out = []
    for i in range(len(c)):
        lo = i - window
        out.append(float((c[i] - (c[lo] if lo >= 0 else 0.0)) / min(window, i + 1)))
    return out


def episodes_to(returns: Sequence[float], target: float, window: int = 20) -> int | None:
    """The first episode number (1-based) whose ``window``-episode average reaches ``target``.

    Only full windows count (the first candidate is episode ``window``); ``None``
    if it never does.
    """
    r = np.asarray(returns, dtype=np.float64)
    for i in range(window - 1, len(r)):
        if r[i - window + 1:i + 1].mean() >= target:
            return i + 1
    return None


def plot_learning_curve(returns: Sequence[float], path: str, window: int = 20, title: str | None = None) -> None:
    """Write a PNG (or any format matplotlib knows from the extension) of the returns.

    Each episode's return is drawn thin and its ``window``-episode moving average
    thick. matplotlib is imported here, with the Agg backend (no display needed).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NeoError("plotting needs matplotlib: pip install 'neocli[rl]'") from None
    r = list(returns)
    x = np.arange(1, len(r) + 1)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        ax.plot(x, r, color="tab:blue", alpha=0.35, linewidth=1, label="episode return")
        ax.plot(x, moving_average(r, window), color="tab:blue", linewidth=2.2,
                label=f"moving average ({window} episodes)")
        ax.set_xlabel("episode")
        ax.set_ylabel("return")
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


__all__ = ["Episode", "Runner", "moving_average", "episodes_to", "plot_learning_curve"]
