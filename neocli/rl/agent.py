"""The agent: a hierarchy built for an encoding, the reward/episode protocol, agent files."""
from __future__ import annotations

import base64
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import NeoError
from ..hierarchy import Hierarchy, set_global_state
from ..params import IOType, LayerDesc
from .encoding import Encoding


def build_hierarchy(encoding: Encoding, layers: Sequence[LayerDesc] | None = None, seed: int | None = 0,
                    **io_kwargs: Any) -> Hierarchy:
    """A new hierarchy for ``encoding``: ``set_global_state(seed)``, then construction.

    ``layers`` defaults to two ``LayerDesc((5, 5, 32))`` (decisions D16); ``io_kwargs``
    go to :meth:`Encoding.io_descs`. ``seed=None`` leaves the process-wide generator
    as it is. Image parts get their ImageEncoder after the hierarchy, so the
    hierarchy's weights are the same as without images for the same seed.
    """
    if layers is None:
        layers = [LayerDesc((5, 5, 32)), LayerDesc((5, 5, 32))]
    if seed is not None:
        set_global_state(seed)
    h = Hierarchy(encoding.io_descs(**io_kwargs), list(layers))
    for p in encoding.image_parts:
        p.build()
    return h


@dataclass
class Protocol:
    """How episodes and rewards are fed to the hierarchy.

    * ``clear_state``: ``clear_state()`` at every episode start, after one extra
      step on the final observation that delivers the last transition's reward
      (default). ``False`` is the D16 protocol: no clear, the last reward and
      action of an episode are fed with the first observation of the next one.
    * ``reward_scale``: the environment's reward is multiplied by it (0 ignores it).
    * ``termination_reward``: added when a transition terminated (not when it was
      truncated by a time limit); e.g. ``-10`` punishes CartPole's pole falling.
    """

    clear_state: bool = True
    reward_scale: float = 1.0
    termination_reward: float = 0.0

    def __post_init__(self) -> None:
        for name in ("reward_scale", "termination_reward"):
            v = getattr(self, name)
            # abs(v) <= max float: also false for NaN, and no OverflowError on a 400-digit int (fuzzing).
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= sys.float_info.max:
                raise NeoError(f"{name} must be a finite number, got {v!r}")
            setattr(self, name, float(v))
        self.clear_state = bool(self.clear_state)

    @classmethod
    def d16(cls) -> "Protocol":
        """Decisions D16: no clear between episodes, reward 0, or -10 on termination."""
        return cls(clear_state=False, reward_scale=0.0, termination_reward=-10.0)

    def reward(self, r: float, terminated: bool) -> float:
        """The reward fed with the next step for a transition with env reward ``r``."""
        return self.reward_scale * float(r) + (self.termination_reward if terminated else 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON description."""
        return {"clear_state": self.clear_state, "reward_scale": self.reward_scale,
                "termination_reward": self.termination_reward}

    @classmethod
    def from_dict(cls, d: Any) -> "Protocol":
        """Rebuild from :meth:`to_dict` output."""
        if not isinstance(d, dict):
            raise NeoError(f"invalid RL protocol description: {d!r}")
        return cls(bool(d.get("clear_state", True)), d.get("reward_scale", 1.0), d.get("termination_reward", 0.0))


def check_ports(h: Hierarchy, enc: Encoding) -> None:
    """Refuse a hierarchy whose IO ports do not fit the encoding."""
    n_obs, acts = enc.num_obs_ios, enc.action.io_sizes
    if h.get_num_io() != n_obs + len(acts):
        raise NeoError(f"the hierarchy has {h.get_num_io()} IO ports, the encoding needs "
                       f"{n_obs} observation + {len(acts)} action port(s)")
    for i, p in enumerate(enc.observation):
        if tuple(h.get_io_size(i)) != tuple(p.io_size) or h.get_io_type(i) == IOType.action:
            raise NeoError(f"IO {i}: the encoding needs a {'x'.join(map(str, p.io_size))} observation port, "
                           f"the hierarchy has {'x'.join(map(str, h.get_io_size(i)))} ({h.get_io_type(i).name})")
    for i, s in zip(enc.action_ios, acts):
        if tuple(h.get_io_size(i)) != tuple(s) or h.get_io_type(i) != IOType.action:
            raise NeoError(f"IO {i}: the encoding needs a {'x'.join(map(str, s))} action port, "
                           f"the hierarchy has {'x'.join(map(str, h.get_io_size(i)))} ({h.get_io_type(i).name})")


def agent_meta(encoding: Encoding, protocol: Protocol) -> dict[str, Any]:
    """The ``rl`` header object of an agent file: encoding, protocol, image encoder bytes."""
    images = []
    for p in encoding.image_parts:
        data = bytes(np.asarray(p.encoder.serialize_to_buffer(), dtype=np.uint8).tobytes())
        images.append(base64.b64encode(data).decode("ascii"))
    meta: dict[str, Any] = {"encoding": encoding.to_dict(), "protocol": protocol.to_dict()}
    if images:
        meta["image_encoders"] = images
    return meta


def save_agent(path: str, hierarchy: Hierarchy, encoding: Encoding, protocol: Protocol,
               meta: dict[str, Any] | None = None) -> None:
    """Write an agent: the hierarchy's ``.ohr`` with ``rl`` (and any extra ``meta``) in its header."""
    m = dict(meta or {})
    m["rl"] = agent_meta(encoding, protocol)
    hierarchy.save_to_file(path, meta=m)


def agent_from_header(header: dict[str, Any]) -> tuple[Encoding, Protocol]:
    """The encoding (image encoders loaded) and protocol stored in an agent's header."""
    rl = header.get("rl")
    if not isinstance(rl, dict):
        raise NeoError("the model is not a reinforcement-learning agent (no 'rl' object in its header)")
    enc = Encoding.from_dict(rl.get("encoding"))
    proto = Protocol.from_dict(rl.get("protocol"))
    images = rl.get("image_encoders", [])
    parts = enc.image_parts
    if not isinstance(images, list) or len(images) != len(parts):
        raise NeoError(f"the agent has {len(parts)} image port(s) but {len(images) if isinstance(images, list) else 0} "
                       "stored image encoder(s)")
    for p, b in zip(parts, images):
        try:
            data = base64.b64decode(b.encode("ascii"), validate=True)
        except (ValueError, AttributeError):
            raise NeoError("a stored image encoder is not valid base64") from None
        p.load(data)
    return enc, proto


def load_agent(path: str) -> tuple[Hierarchy, Encoding, Protocol, dict[str, Any]]:
    """Load an agent file: ``(hierarchy, encoding, protocol, header)``."""
    from ..ohr import read_header

    header = read_header(path)
    enc, proto = agent_from_header(header)
    h = Hierarchy(file_name=path)
    check_ports(h, enc)
    return h, enc, proto, header


def describe_agent(rl_meta: Any) -> str:
    """One line describing an agent from its header's ``rl`` object (for ``inspect``)."""
    if not isinstance(rl_meta, dict):
        return "invalid RL description"
    try:
        enc = Encoding.from_dict(rl_meta.get("encoding"))
        proto = Protocol.from_dict(rl_meta.get("protocol"))
    except NeoError as e:
        return f"invalid RL description ({e})"
    resets = "state cleared every episode" if proto.clear_state else "no clear between episodes"
    return (f"RL agent for {rl_meta.get('env_id') or enc.env_id}: {enc.describe()}; {resets}, reward "
            f"{proto.reward_scale:g} x env + {proto.termination_reward:g} on termination")


__all__ = ["build_hierarchy", "Protocol", "check_ports", "agent_meta", "save_agent", "agent_from_header",
           "load_agent", "describe_agent"]
