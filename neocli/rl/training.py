"""Training and evaluating agents: the loops ``neocli rl train``/``eval`` run, as a library API.

::

    from neocli import rl, training

    opts = rl.AgentOptions(env="CartPole-v1", episodes=200, protocol="d16")
    result = rl.train_agent(opts, output="cartpole.ohr")
    ev = rl.evaluate_agent("cartpole.ohr", "CartPole-v1", episodes=20)
    print(ev.mean)

Training writes checkpoints every ``checkpoint_every`` episodes and resumes exactly: the
record keeps the returns, the environment's generator state and what the next episode
inherits (previous action, pending reward). On SIGINT/SIGTERM a checkpoint is written and
:class:`neocli.training.Interrupted` is raised.
"""
from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import checkpoints
from ..errors import ConflictError, NeoError, OptionError, ParameterError
from ..hierarchy import Hierarchy
from ..ohr import read_header
from ..params import LayerDesc
from ..sources import check_output, prepare_directory
from ..training import (
    MAX_SEED, Architecture, Interrupted, StopSignals, _int, _set, rotate_checkpoints, utc_now,
)
from .._threads import set_num_threads
from .agent import Protocol, agent_from_header, agent_meta, build_hierarchy
from .encoding import DEFAULT_BINS, DEFAULT_SQUASH_SCALE, Encoding, encoding_for_env
from .envs import env_rng_state, make_env, set_env_rng_state
from .runner import Runner, moving_average

#: Radii and dendrites of an agent when the architecture leaves them out (decisions D16;
#: the sequence-model defaults of ``neocli.training`` were chosen on text and differ).
AGENT_ARCH_DEFAULTS = {"up_radius": 2, "down_radius": 2, "recurrent_radius": 0, "dendrites": 4}
#: Episodes averaged for the moving average.
WINDOW = 20
DEFAULT_EPISODES = 100
DEFAULT_EVAL_EPISODES = 20
#: Actor ``min_steps`` when the state is cleared every episode. The reference's 16
#: never replays the last 16 transitions of an episode (a clear empties the actor's
#: history), which are the ones that lead to its end; see README "Reinforcement learning".
CLEAR_MIN_STEPS = 1
PROTOCOLS = ("default", "d16")


@dataclass(frozen=True)
class AgentOptions:
    """An agent training run. ``None`` fields take the defaults: 100 episodes, the default
    protocol (``"d16"``: the manual-example CartPole setup), the state cleared every episode
    (``reset_on="episode"``; ``"none"`` keeps it), ``bins``/``obs_scale`` of
    :func:`encoding_for_env`, reward ``reward_scale * r + termination_reward`` (1 and 0)."""

    env: str
    episodes: int | None = None
    protocol: str | None = None
    reset_on: str | None = None
    bins: int | None = None
    obs_scale: float | None = None
    termination_reward: float | None = None
    reward_scale: float | None = None
    min_steps: int | None = None
    architecture: Architecture = field(default_factory=Architecture)
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep: int | None = None
    #: None: 0 for a new agent, the agent's own when resuming (a given seed must match it).
    seed: int | None = None
    threads: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not self.env:
            raise OptionError("env", f"must be a gymnasium environment id, got {self.env!r}")
        if self.episodes is not None:
            _set(self, "episodes", _int("episodes", self.episodes, 1))
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise OptionError("protocol", f"must be default or d16, got {self.protocol!r}")
        if self.reset_on is not None and self.reset_on not in ("episode", "none"):
            raise OptionError("reset_on", f"must be episode or none for an agent, got {self.reset_on!r}")
        if self.bins is not None:
            _set(self, "bins", _int("bins", self.bins, 2))
        if self.min_steps is not None:
            _set(self, "min_steps", _int("min_steps", self.min_steps, 1))
        if self.obs_scale is not None and not (_finite(self.obs_scale) and self.obs_scale > 0):
            raise OptionError("obs_scale", f"must be a number > 0, got {self.obs_scale}")
        for name in ("termination_reward", "reward_scale"):
            if getattr(self, name) is not None and not _finite(getattr(self, name)):
                raise OptionError(name, f"must be finite, got {getattr(self, name)}")
        if not isinstance(self.architecture, Architecture):
            raise OptionError("architecture", f"must be an Architecture, got {type(self.architecture).__name__}")
        _set(self, "checkpoint_every", _int("checkpoint_every", self.checkpoint_every, 0))
        if self.keep is not None:
            _set(self, "keep", _int("keep", self.keep, 1))
        if (self.checkpoint_every or self.keep) and not self.checkpoint_dir:
            raise OptionError("checkpoint_dir", "is required to write or keep checkpoints")
        if self.seed is not None:
            _set(self, "seed", _int("seed", self.seed, 0, MAX_SEED))
        if self.threads is not None:
            _set(self, "threads", _int("threads", self.threads, 1))
        if not isinstance(self.meta, dict):
            raise OptionError("meta", f"must be a dict, got {self.meta!r}")
        if self.protocol == "d16":
            for name in sorted(self.given()):
                raise OptionError(name, "cannot be set with protocol d16 (it fixes the encoding, "
                                        "architecture, rewards and resets)")

    @property
    def initial_seed(self) -> int:
        """The seed a new agent starts from: ``seed``, or 0 when it was not given."""
        return 0 if self.seed is None else self.seed

    def given(self) -> dict[str, Any]:
        """The architecture and encoding fields set (not None), as stored in the record."""
        out = self.architecture.given()
        for k in ("bins", "obs_scale", "termination_reward", "reward_scale", "min_steps"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.reset_on is not None:
            out["reset_on"] = self.reset_on
        return out


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


@dataclass
class EpisodeProgress:
    """Reported after each training episode."""

    episode: int
    episodes: int
    ret: float
    length: int
    average: float


@dataclass
class AgentResult:
    """What :func:`train_agent` returns; ``record`` is the header's ``training`` object."""

    hierarchy: Hierarchy
    encoding: Encoding
    protocol: Protocol
    record: dict[str, Any]
    output: str | None = None

    @property
    def returns(self) -> list[float]:
        """Every training episode's return, in order."""
        return self.record["returns"]


def _rl_header(path: str, parameter: str) -> dict[str, Any]:
    if os.path.isdir(path):
        raise ParameterError(parameter, f"'{path}' is a directory, not a model file")
    header = read_header(path)
    if "rl" not in header:
        kind = "a text model" if "codec" in header else "not a reinforcement-learning agent"
        raise ParameterError(parameter, f"'{path}' is {kind}: an agent trained in an environment is needed")
    return header


def _new_agent(env: Any, o: AgentOptions, init: str | None) -> tuple[Hierarchy, Encoding, Protocol]:
    clear = o.reset_on != "none"
    if o.protocol == "d16":
        enc, proto, min_steps = encoding_for_env(env, preset="d16"), Protocol.d16(), None
    else:
        enc = encoding_for_env(env, bins=o.bins if o.bins is not None else DEFAULT_BINS,
                               squash_scale=o.obs_scale if o.obs_scale is not None else DEFAULT_SQUASH_SCALE)
        proto = Protocol(clear_state=clear, reward_scale=1.0 if o.reward_scale is None else o.reward_scale,
                         termination_reward=o.termination_reward or 0.0)
        min_steps = o.min_steps if o.min_steps is not None else (CLEAR_MIN_STEPS if clear else None)
    a = o.architecture.radii(AGENT_ARCH_DEFAULTS)
    lds = [LayerDesc(s, num_dendrites_per_cell=a["dendrites"], up_radius=a["up_radius"],
                     recurrent_radius=a["recurrent_radius"], down_radius=a["down_radius"])
           for s in o.architecture.sizes(2, (5, 5, 32))]   # agents keep 2 x 5x5x32 (the text defaults differ)
    h = build_hierarchy(enc, lds, seed=o.initial_seed, up_radius=a["up_radius"], down_radius=a["down_radius"],
                        dendrites=a["dendrites"])
    if min_steps is not None:
        for i in enc.action_ios:
            h.params.ios[i].actor.min_steps = int(min_steps)
    if init is not None:
        _take_weights(h, enc, init)
    return h, enc, proto


def _take_weights(h: Hierarchy, enc: Encoding, init: str) -> None:
    src_enc, _ = agent_from_header(_rl_header(init, "init"))
    mine, theirs = enc.to_dict(), src_enc.to_dict()
    if mine["observation"] != theirs["observation"] or mine["action"] != theirs["action"]:
        raise ParameterError("init", f"'{init}' encodes {src_enc.describe()}, this run {enc.describe()}")
    try:
        h.set_weights_from_buffer(Hierarchy(file_name=init).serialize_weights_to_buffer())
    except NeoError as e:
        raise ParameterError("init", f"'{init}' has a different architecture: {e}") from None
    for m, t in zip(enc.image_parts, src_enc.image_parts):
        m.encoder = t.encoder


def _resume(path: str, o: AgentOptions) -> tuple[Hierarchy, Encoding, Protocol, dict[str, Any], dict[str, Any]]:
    header = _rl_header(path, "resume")
    t = header.get("training")
    if not isinstance(t, dict) or t.get("kind") != "rl" or not isinstance(t.get("returns"), list):
        raise ParameterError("resume", f"'{path}' has no RL training record to resume from")
    if t.get("env") != o.env:
        raise ParameterError("resume", f"'{path}' was trained on {t.get('env')!r}, not {o.env!r}")
    prev = t.get("options", {})
    asked = o.given()
    if o.protocol is not None:
        asked["protocol"] = o.protocol
    for k, v in asked.items():
        if prev.get(k, "default" if k == "protocol" else ("episode" if k == "reset_on" else None)) != v:
            raise ParameterError("resume", f"the model was trained with {k}={prev.get(k)!r}, "
                                           f"but this run asks for {k}={v!r}")
    # As for train: an explicit seed (0 included) must be the agent's; none means the agent's.
    if o.seed is not None and "seed" in t and o.seed != t["seed"]:
        raise ConflictError("resume", path, "seed", t.get("seed"), o.seed)
    done = int(t.get("episode", 0))
    target = int(t.get("episodes", 0)) if o.episodes is None else o.episodes
    if t.get("complete") and o.episodes is None:
        raise ParameterError("resume", f"'{path}' has finished its {done} episodes; ask for more episodes (> {done})")
    if target <= done:
        raise ParameterError("resume", f"'{path}' has already trained {done} episodes; episodes is the total, "
                                       f"so ask for more than {done}")
    t["episodes"], t["complete"] = target, False
    enc, proto = agent_from_header(header)
    return Hierarchy(file_name=path), enc, proto, t, {**(header.get("user") or {}), **o.meta}


class _AgentRun:
    """One agent training run: episodes, checkpoints, the interrupt."""

    def __init__(self, runner: Runner, t: dict[str, Any], user: dict[str, Any], o: AgentOptions,
                 output: str | None, progress: Callable[[EpisodeProgress], Any] | None) -> None:
        self.runner, self.t, self.user, self.o, self.output, self.progress = runner, t, user, o, output, progress

    def save(self, path: str) -> None:
        """Write the agent with its record (env generator and carried state included)."""
        r = self.runner
        self.t["env_rng"] = env_rng_state(r.env)
        self.t["carry"] = r.carry()
        self.t["updated_utc"] = utc_now()
        meta = {"rl": {"env_id": self.t["env"], **agent_meta(r.encoding, r.protocol)}, "training": self.t,
                "user": self.user}
        r.h.save_to_file(path, meta=meta)

    def checkpoint(self) -> str:
        """Write a checkpoint into the checkpoint directory and rotate old ones."""
        d = self.o.checkpoint_dir
        rid = self.t.setdefault("run_id", checkpoints.new_run_id())  # agents of earlier versions had none
        path = os.path.join(d, checkpoints.checkpoint_name(rid, self.t["episode"], self.t["steps"], width=6))
        self.save(path)
        checkpoints.rotate(d, rid, self.o.keep, just_written=path)
        return path

    def run(self) -> None:
        """Play the remaining episodes, learning."""
        t = self.t
        returns, lengths = t["returns"], t.setdefault("lengths", [])
        start = time.perf_counter()
        with StopSignals() as stop:
            while t["episode"] < t["episodes"]:
                ep = self.runner.run_episode(learn=True)
                returns.append(ep.ret)
                lengths.append(ep.length)
                t["episode"] += 1
                t["steps"] += ep.length
                if self.progress is not None:
                    avg = moving_average(returns[-WINDOW:], WINDOW)[-1]
                    self.progress(EpisodeProgress(t["episode"], t["episodes"], ep.ret, ep.length, avg))
                if stop.flag:
                    self._interrupted(stop.signum or signal.SIGINT)
                every = self.o.checkpoint_every
                if every and t["episode"] % every == 0 and t["episode"] < t["episodes"]:
                    self.checkpoint()
        t["seconds"] = float(t.get("seconds", 0.0)) + (time.perf_counter() - start)

    def _interrupted(self, signum: int) -> None:
        path = self.checkpoint() if self.o.checkpoint_dir else self.output
        if path is not None and path == self.output:
            self.save(path)
        raise Interrupted(path, self.t["episode"], self.t["steps"], signum,
                          where=f"{self.t['episode']} episodes, {self.t['steps']} steps",
                          output=self.output, env=self.o.env)


def train_agent(options: AgentOptions, output: str | None = None,
                progress: Callable[[EpisodeProgress], Any] | None = None, resume: str | None = None,
                init: str | None = None) -> AgentResult:
    """Train an agent in ``options.env`` and write it to ``output`` (atomically, at the end).

    ``resume``: continue an agent or checkpoint exactly (``episodes`` is the total to reach).
    ``init``: start from another agent's weights (same encoding) with a fresh state.
    """
    if not isinstance(options, AgentOptions):
        raise OptionError("options", f"must be an AgentOptions, got {type(options).__name__}")
    if resume is not None and init is not None:
        raise OptionError("resume", "and init cannot be used together")
    if options.threads is not None:
        set_num_threads(options.threads)
    if output is not None:
        check_output(output)
    if options.checkpoint_dir:
        prepare_directory(options.checkpoint_dir)
    env = make_env(options.env)
    try:
        if resume is not None:
            h, enc, proto, t, user = _resume(resume, options)
            runner = Runner(env, h, enc, proto)
            if t.get("env_rng") is not None:
                set_env_rng_state(env, t["env_rng"])
            if t.get("carry") is not None:
                runner.set_carry(t["carry"])
        else:
            h, enc, proto = _new_agent(env, options, init)
            runner = Runner(env, h, enc, proto, seed=options.initial_seed)
            user = dict(options.meta)
            t = {"kind": "rl", "env": options.env, "episode": 0, "run_id": checkpoints.new_run_id(),
                 "episodes": options.episodes if options.episodes is not None else DEFAULT_EPISODES,
                 "steps": 0, "seed": options.initial_seed, "returns": [], "lengths": [], "complete": False,
                 "started_utc": utc_now(), "updated_utc": utc_now(),
                 "options": {"protocol": options.protocol or "default",
                             **options.given(), "reset_on": "episode" if proto.clear_state else "none",
                             **({"init": os.path.basename(init)} if init else {})}}
        run = _AgentRun(runner, t, user, options, output, progress)
        run.run()
    finally:
        env.close()
    t["complete"] = True
    t["finished_utc"] = utc_now()
    if output is not None:
        run.save(output)
    return AgentResult(runner.h, enc, proto, t, output)


@dataclass
class Evaluation:
    """Returns of an agent played with learning off; ``note`` is set when the environment
    differs from the one the agent was trained on (same spaces)."""

    env: str
    returns: list[float]
    steps: int
    seconds: float
    seed: int
    greedy: bool
    note: str | None = None

    def summary(self) -> dict[str, Any]:
        """mean, min, max and std of the returns (None for no episodes)."""
        r = np.asarray(self.returns, dtype=np.float64)
        if r.size == 0:
            return {"mean": None, "min": None, "max": None, "std": None}
        return {"mean": float(r.mean()), "min": float(r.min()), "max": float(r.max()), "std": float(r.std())}

    @property
    def mean(self) -> float | None:
        """Mean return."""
        return self.summary()["mean"]


def evaluate_agent(path: str, env_id: str | None = None, episodes: int = DEFAULT_EVAL_EPISODES, seed: int = 0,
                   greedy: bool = False, progress: Callable[[int], Any] | None = None) -> Evaluation:
    """Play ``episodes`` episodes of the agent at ``path`` in ``env_id`` with learning off.

    ``env_id`` defaults to the environment the agent records it was trained on; another one
    is allowed if its spaces fit the agent. ``seed`` seeds the first ``env.reset``; ``greedy``
    takes the most probable action instead of sampling. ``progress(episodes_done)`` is
    called after each episode. Errors about the agent file name the parameter ``agent``.
    """
    episodes = _int("episodes", episodes, 1)
    seed = _int("seed", seed, 0, MAX_SEED)
    header = _rl_header(path, "agent")
    enc, proto = agent_from_header(header)
    trained_on = header["rl"].get("env_id")
    if env_id is None:
        if not isinstance(trained_on, str) or not trained_on:
            raise ParameterError("env_id", f"the agent '{path}' records no environment id: give env_id")
        env_id = trained_on
    env = make_env(env_id)
    try:
        try:
            enc.check_env(env)
        except NeoError as e:
            raise ParameterError("agent", f"the agent was trained on {trained_on!r} and does not fit "
                                          f"{env_id!r}: {e}") from None
        runner = Runner(env, Hierarchy(file_name=path), enc, proto, seed=seed)
        t = header.get("training")
        if not proto.clear_state and isinstance(t, dict) and t.get("carry") is not None:
            runner.set_carry(t["carry"])  # continue exactly where training left the episode chain
        returns, start = [], time.perf_counter()
        for i in range(episodes):
            returns.append(runner.run_episode(learn=False, greedy=greedy).ret)
            if progress is not None:
                progress(i + 1)
        seconds = time.perf_counter() - start
    finally:
        env.close()
    note = (f"the agent was trained on {trained_on}; evaluating on {env_id} (same spaces)"
            if trained_on and trained_on != env_id else None)
    return Evaluation(env_id, returns, runner.steps, seconds, seed, greedy, note)


def require_matplotlib() -> None:
    """Fail early (before training) when plotting is asked for but matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NeoError("plotting needs matplotlib: pip install 'neocli[rl]'") from None


__all__ = ["AgentOptions", "AgentResult", "EpisodeProgress", "Evaluation", "train_agent", "evaluate_agent",
           "require_matplotlib", "WINDOW", "DEFAULT_EPISODES", "DEFAULT_EVAL_EPISODES", "PROTOCOLS"]
