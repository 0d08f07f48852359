"""``neocli train --env`` and ``neocli eval --env``: agents in gymnasium environments.

``train.py`` and ``eval.py`` hand their options over here as soon as ``--env`` is
given; everything about environments lives in this module and in ``neocli.rl``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import numpy as np
import typer
from tqdm import tqdm

from .. import Hierarchy, LayerDesc, set_num_threads
from .. import aogmaneo, rl
from .._errors import NeoError
from ..ohr import read_header
from ._common import Interrupt, parse_meta, parse_sizes, rotate_checkpoints, utc_now
from ._data import check_writable
from .app import CliError, UsageError, echo_err
from .migrate import reference_hint

#: Episodes averaged for the moving average (the issue's and D16's 20).
WINDOW = 20
DEFAULT_EPISODES = 100
DEFAULT_EVAL_EPISODES = 20
DEFAULT_HIDDEN = "5x5x32"
DEFAULT_LAYERS = 2
ARCH_DEFAULTS = {"up_radius": 2, "down_radius": 2, "recurrent_radius": 0, "dendrites": 4}
#: Actor ``min_steps`` when the state is cleared every episode. The reference's 16
#: never replays the last 16 transitions of an episode (a clear empties the actor's
#: history), which are the ones that lead to its end; see README "Reinforcement learning".
CLEAR_MIN_STEPS = 1

# Options of ``train`` that only make sense for text data, with their flags.
_TEXT_ONLY = {"codec": "--codec", "byte_layout": "--byte-layout", "max_vocab": "--max-vocab",
              "csv_range": "--csv-range", "csv_header": "--csv-header"}


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        set_num_threads(threads)


def _make_env(env_id: str):
    try:
        return rl.make_env(env_id)
    except NeoError as e:
        raise CliError(str(e)) from None


def _reset_mode(reset_on: str) -> bool:
    """``--reset-on`` for environments: episode (default; ``file`` means the same) or none."""
    if reset_on in ("file", "episode"):
        return True
    if reset_on == "none":
        return False
    raise UsageError(f"--reset-on with --env must be episode or none, got {reset_on!r}")


def _meta(enc: rl.Encoding, proto: rl.Protocol, t: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    t["updated_utc"] = utc_now()
    return {"rl": {"env_id": t["env"], **rl.agent_meta(enc, proto)}, "training": t, "user": user}


def _load_rl_header(path: str, what: str) -> dict[str, Any]:
    if os.path.isdir(path):
        raise CliError(f"'{path}' is a directory, not a model file")
    if aogmaneo.is_aogmaneo_file(path):
        raise CliError(reference_hint(path))
    header = read_header(path)
    if "rl" not in header:
        kind = "a text model" if "codec" in header else "not a model trained with --env"
        raise CliError(f"{what} '{path}' is {kind}: --env needs an agent trained with 'neocli train --env'")
    return header


def _summary(returns: list[float]) -> dict[str, Any]:
    r = np.asarray(returns, dtype=np.float64)
    if r.size == 0:
        return {"mean": None, "min": None, "max": None, "std": None}
    return {"mean": float(r.mean()), "min": float(r.min()), "max": float(r.max()), "std": float(r.std())}


# ---------------------------------------------------------------------------
# train


def train_env(o: dict[str, Any]) -> None:
    """``neocli train --env ID``: ``o`` holds every option of the ``train`` command."""
    env_id = o["env"]
    if o.get("data"):
        raise UsageError("--env trains in an environment: give no DATA files")
    for key, flag in _TEXT_ONLY.items():
        if o.get(key) is not None:
            raise UsageError(f"{flag} is for text training; it does not apply with --env")
    if o.get("epochs", 1) != 1:
        raise UsageError("--epochs is for text training; use --episodes with --env")
    episodes = o.get("episodes")
    if episodes is not None and episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    clear = _reset_mode(o.get("reset_on", "file"))
    protocol_name = o.get("protocol") or "default"
    if protocol_name not in ("default", "d16"):
        raise UsageError(f"--protocol must be default or d16, got {protocol_name!r}")
    keep, resume, init = o.get("keep"), o.get("resume"), o.get("init")
    if keep is not None and keep < 1:
        raise UsageError(f"--keep must be >= 1, got {keep}")
    if resume and init:
        raise UsageError("--resume and --init cannot be used together")
    every = _parse_every_episodes(o.get("checkpoint_every"))
    ckdir = o.get("checkpoint_dir")
    if (every or keep) and not ckdir:
        raise UsageError("--checkpoint-every and --keep need --checkpoint-dir")
    if o.get("min_steps") is not None and o["min_steps"] < 1:
        raise UsageError(f"--min-steps must be >= 1, got {o['min_steps']}")
    if o.get("bins") is not None and o["bins"] < 2:
        raise UsageError(f"--bins must be >= 2, got {o['bins']}")
    if o.get("obs_scale") is not None and not (math.isfinite(o["obs_scale"]) and o["obs_scale"] > 0):
        raise UsageError(f"--obs-scale must be a number > 0, got {o['obs_scale']}")
    for key in ("termination_reward", "reward_scale"):
        if o.get(key) is not None and not math.isfinite(o[key]):
            raise UsageError(f"--{key.replace('_', '-')} must be finite, got {o[key]}")
    if o.get("seed", 0) < 0:
        raise UsageError(f"--seed must be >= 0 with --env (it seeds env.reset), got {o['seed']}")
    _set_threads(o.get("threads"))
    output = o["output"]
    check_writable(output)
    plot = o.get("plot")
    if plot:
        check_writable(plot)
        _check_matplotlib()
    if ckdir:
        os.makedirs(ckdir, exist_ok=True)
        if not os.access(ckdir, os.W_OK | os.X_OK):
            raise CliError(f"checkpoint directory '{ckdir}' is not writable")
    user = parse_meta(o.get("meta"))

    arch_given = {k: o[k] for k in ("up_radius", "down_radius", "recurrent_radius", "dendrites", "layers", "hidden")
                  if o.get(k) is not None}
    enc_given = {k: o[k] for k in ("bins", "obs_scale", "termination_reward", "reward_scale", "min_steps")
                 if o.get(k) is not None}
    reset_given = o.get("reset_on", "file") not in ("file",)
    env = _make_env(env_id)
    try:
        if resume:
            h, enc, proto, t, user = _resume(resume, env_id, env, episodes, arch_given, enc_given,
                                             protocol_name if o.get("protocol") else None,
                                             clear if reset_given else None, user)
            runner = rl.Runner(env, h, enc, proto)
            if t.get("env_rng") is not None:
                rl.set_env_rng_state(env, t["env_rng"])
            if t.get("carry") is not None:
                runner.set_carry(t["carry"])
        else:
            h, enc, proto = _new_agent(env, protocol_name, clear, reset_given, arch_given, enc_given, o["seed"], init)
            runner = rl.Runner(env, h, enc, proto, seed=o["seed"])
            t = {
                "kind": "rl", "env": env_id, "episode": 0,
                "episodes": episodes if episodes is not None else DEFAULT_EPISODES,
                "steps": 0, "seed": o["seed"], "returns": [], "lengths": [], "complete": False,
                "started_utc": utc_now(), "updated_utc": utc_now(),
                "options": {"protocol": protocol_name, "reset_on": "episode" if clear else "none",
                            **arch_given, **enc_given, **({"init": os.path.basename(init)} if init else {})},
            }
        _train_loop(runner, enc, proto, t, user, o, every, keep)
    finally:
        env.close()
    t["complete"] = True
    t["finished_utc"] = utc_now()
    _save(runner, enc, proto, t, user, output)
    returns = t["returns"]
    if plot:
        _plot(returns, plot, env_id)
    quiet = o.get("quiet", False)
    ma = rl.moving_average(returns, WINDOW)
    if not quiet:
        reached = rl.episodes_to(returns, 195.0, WINDOW) if env_id.startswith("CartPole") else None
        extra = f", 20-episode average reached 195 at episode {reached}" if reached else ""
        echo_err(f"saved '{output}' ({t['episode']} episodes, {t['steps']} steps, final {WINDOW}-episode "
                 f"average {ma[-1]:.1f}{extra})")
        if plot:
            echo_err(f"learning curve written to '{plot}'")
    if o.get("json_out"):
        print(json.dumps({"model": output, "env": env_id, "episodes": t["episode"], "steps": t["steps"],
                          "seed": t["seed"], "returns": returns, "moving_average": ma[-1] if ma else None,
                          "best_moving_average": max(ma) if ma else None, **{f"return_{k}": v for k, v in
                                                                              _summary(returns).items()},
                          "encoding": enc.describe(), "protocol": proto.to_dict(),
                          "sizes": {"state": runner.h.get_state_size(), "weights": runner.h.get_weights_size(),
                                    "total": runner.h.get_size()}}, indent=2))


def _parse_every_episodes(text: str | None) -> int:
    """``--checkpoint-every N``: every N episodes with --env."""
    if text is None:
        return 0
    try:
        n = int(text.strip())
    except ValueError:
        raise UsageError(f"--checkpoint-every with --env expects a number of episodes, got {text!r}") from None
    if n < 1:
        raise UsageError(f"--checkpoint-every must be >= 1, got {text!r}")
    return n


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'neocli[rl]'") from None


def _plot(returns: list[float], path: str, env_id: str) -> None:
    try:
        rl.plot_learning_curve(returns, path, WINDOW, title=f"{env_id}: neocli agent")
    except NeoError as e:
        raise CliError(str(e)) from None


def _new_agent(env, protocol_name: str, clear: bool, reset_given: bool, arch_given: dict[str, Any],
               enc_given: dict[str, Any], seed: int, init: str | None):
    if protocol_name == "d16":
        clash = sorted(set(arch_given) | set(enc_given)) + (["reset_on"] if reset_given else [])
        if clash:
            flags = ", ".join("--" + k.replace("_", "-") for k in clash)
            raise UsageError(f"--protocol d16 fixes the encoding, architecture, rewards and resets "
                           f"(decisions D16); leave out {flags}")
        enc = rl.encoding_for_env(env, preset="d16")
        proto = rl.Protocol.d16()
        min_steps = None
    else:
        try:
            enc = rl.encoding_for_env(env, bins=enc_given.get("bins", rl.DEFAULT_BINS),
                                      squash_scale=enc_given.get("obs_scale", rl.DEFAULT_SQUASH_SCALE))
            proto = rl.Protocol(clear_state=clear, reward_scale=enc_given.get("reward_scale", 1.0),
                                termination_reward=enc_given.get("termination_reward", 0.0))
        except NeoError as e:
            raise CliError(str(e)) from None
        min_steps = enc_given.get("min_steps", CLEAR_MIN_STEPS if clear else None)
    hidden = arch_given.get("hidden", DEFAULT_HIDDEN)
    layers = arch_given.get("layers")
    sizes = parse_sizes(hidden, layers if layers is not None else (None if "," in hidden else DEFAULT_LAYERS))
    a = {k: arch_given.get(k, v) for k, v in ARCH_DEFAULTS.items()}
    lds = [LayerDesc(s, num_dendrites_per_cell=a["dendrites"], up_radius=a["up_radius"],
                     recurrent_radius=a["recurrent_radius"], down_radius=a["down_radius"]) for s in sizes]
    h = rl.build_hierarchy(enc, lds, seed=seed, up_radius=a["up_radius"], down_radius=a["down_radius"],
                           dendrites=a["dendrites"])
    if min_steps is not None:
        for i in enc.action_ios:
            h.params.ios[i].actor.min_steps = int(min_steps)
    if init:
        header = _load_rl_header(init, "--init")
        src_enc, _ = rl.agent_from_header(header)
        if src_enc.to_dict()["observation"] != enc.to_dict()["observation"] or \
                src_enc.to_dict()["action"] != enc.to_dict()["action"]:
            raise CliError(f"--init: '{init}' encodes {src_enc.describe()}, this run {enc.describe()}")
        src = Hierarchy(file_name=init)
        try:
            h.set_weights_from_buffer(src.serialize_weights_to_buffer())
        except NeoError as e:
            raise CliError(f"--init: '{init}' has a different architecture: {e}") from None
        for mine, theirs in zip(enc.image_parts, src_enc.image_parts):
            mine.encoder = theirs.encoder
    return h, enc, proto


def _resume(path: str, env_id: str, env, episodes: int | None, arch_given: dict[str, Any],
            enc_given: dict[str, Any], protocol_name: str | None, clear: bool | None, user: dict[str, Any]):
    header = _load_rl_header(path, "--resume")
    t = header.get("training")
    if not isinstance(t, dict) or t.get("kind") != "rl" or not isinstance(t.get("returns"), list):
        raise CliError(f"'{path}' has no RL training record to resume from")
    if t.get("env") != env_id:
        raise CliError(f"--resume: '{path}' was trained on {t.get('env')!r}, not {env_id!r}")
    prev = t.get("options", {})
    asked = {**arch_given, **enc_given}
    if protocol_name is not None:
        asked["protocol"] = protocol_name
    if clear is not None:
        asked["reset_on"] = "episode" if clear else "none"
    for k, v in asked.items():
        if prev.get(k, "default" if k == "protocol" else None) != v:
            raise CliError(f"--resume: the model was trained with {k}={prev.get(k)!r}, but this run asks for {k}={v!r}")
    done = int(t.get("episode", 0))
    target = int(t.get("episodes", 0)) if episodes is None else episodes
    if t.get("complete") and episodes is None:
        raise CliError(f"--resume: '{path}' has finished its {done} episodes; "
                       f"ask for more with --episodes N (> {done})")
    if target <= done:
        raise CliError(f"--resume: '{path}' has already trained {done} episodes; --episodes is the total, "
                       f"so ask for more than {done}")
    t["episodes"] = target
    t["complete"] = False
    try:
        enc, proto = rl.agent_from_header(header)
    except NeoError as e:
        raise CliError(f"--resume: '{path}': {e}") from None
    h = Hierarchy(file_name=path)
    return h, enc, proto, t, {**(header.get("user") or {}), **user}


def _save(runner: rl.Runner, enc, proto, t: dict[str, Any], user: dict[str, Any], path: str) -> None:
    t["env_rng"] = rl.env_rng_state(runner.env)
    t["carry"] = runner.carry()
    runner.h.save_to_file(path, meta=_meta(enc, proto, t, user))


def _checkpoint(runner, enc, proto, t, user, ckdir: str, keep: int | None) -> str:
    path = os.path.join(ckdir, f"ckpt-e{t['episode']:06d}-s{t['steps']:010d}.ohr")
    _save(runner, enc, proto, t, user, path)
    rotate_checkpoints(ckdir, keep)
    return path


def _train_loop(runner: rl.Runner, enc, proto, t: dict[str, Any], user: dict[str, Any], o: dict[str, Any],
                every: int, keep: int | None) -> None:
    quiet = o.get("quiet", False)
    ckdir = o.get("checkpoint_dir")
    returns, lengths = t["returns"], t.setdefault("lengths", [])
    bar = tqdm(total=t["episodes"], initial=t["episode"], desc=t["env"], unit="ep", file=sys.stderr,
               disable=True if quiet else None, mininterval=0.5, leave=False)
    start = time.perf_counter()
    try:
        with Interrupt() as interrupt:
            while t["episode"] < t["episodes"]:
                ep = runner.run_episode(learn=True)
                returns.append(ep.ret)
                lengths.append(ep.length)
                t["episode"] += 1
                t["steps"] += ep.length
                ma = rl.moving_average(returns[-WINDOW:], WINDOW)[-1]
                bar.update(1)
                bar.set_postfix_str(f"return {ep.ret:g}  avg{WINDOW} {ma:.1f}", refresh=False)
                if not quiet:
                    echo_err(f"episode {t['episode']}/{t['episodes']}: return {ep.ret:g}  "
                             f"average({WINDOW}) {ma:.1f}  steps {ep.length}")
                if interrupt.flag:
                    path = _checkpoint(runner, enc, proto, t, user, ckdir, keep) if ckdir else None
                    if path is None:
                        path = o["output"]
                        _save(runner, enc, proto, t, user, path)
                    echo_err(f"interrupted: checkpoint written to '{path}' ({t['episode']} episodes, "
                             f"{t['steps']} steps); continue with --resume {path}")
                    raise typer.Exit(130)
                if every and t["episode"] % every == 0 and t["episode"] < t["episodes"]:
                    _checkpoint(runner, enc, proto, t, user, ckdir, keep)
    finally:
        bar.close()
    t["seconds"] = float(t.get("seconds", 0.0)) + (time.perf_counter() - start)


# ---------------------------------------------------------------------------
# eval


def eval_env(o: dict[str, Any]) -> None:
    """``neocli eval MODEL --env ID``: returns over ``--episodes`` episodes, learning off."""
    model, env_id = o["model"], o["env"]
    if o.get("data"):
        raise UsageError("--env evaluates in an environment: give no DATA files")
    if o.get("reset_on", "file") != "file":
        raise UsageError("--reset-on does not apply with --env: the agent's own protocol decides the resets")
    episodes = o.get("episodes")
    episodes = DEFAULT_EVAL_EPISODES if episodes is None else episodes
    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    seed = o.get("seed")
    seed = 0 if seed is None else seed
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    _set_threads(o.get("threads"))
    header = _load_rl_header(model, "model")
    try:
        enc, proto = rl.agent_from_header(header)
    except NeoError as e:
        raise CliError(f"model '{model}': {e}") from None
    trained_on = header["rl"].get("env_id")
    env = _make_env(env_id)
    try:
        try:
            enc.check_env(env)
        except NeoError as e:
            raise CliError(f"the agent was trained on {trained_on!r} and does not fit {env_id!r}: {e}") from None
        if trained_on and trained_on != env_id:
            echo_err(f"note: the agent was trained on {trained_on}; evaluating on {env_id} (same spaces)")
        h = Hierarchy(file_name=model)
        runner = rl.Runner(env, h, enc, proto, seed=seed)
        t = header.get("training")
        if not proto.clear_state and isinstance(t, dict) and t.get("carry") is not None:
            runner.set_carry(t["carry"])  # continue exactly where training left the episode chain
        returns = []
        bar = tqdm(total=episodes, desc=f"eval {env_id}", unit="ep", file=sys.stderr, disable=None,
                   mininterval=0.5, leave=False)
        start = time.perf_counter()
        try:
            for _ in range(episodes):
                ep = runner.run_episode(learn=False, greedy=bool(o.get("greedy")))
                returns.append(ep.ret)
                bar.update(1)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
    finally:
        env.close()
    s = _summary(returns)
    if o.get("json_out"):
        print(json.dumps({"model": model, "env": env_id, "episodes": episodes, "seed": seed,
                          "greedy": bool(o.get("greedy")), "returns": returns, **s,
                          "steps": runner.steps, "seconds": seconds}, indent=2))
    else:
        print(f"{env_id}: {episodes} episodes, learning off{', greedy' if o.get('greedy') else ''}: "
              f"return mean {s['mean']:.2f}  min {s['min']:g}  max {s['max']:g}  (std {s['std']:.2f})")


def reject_rl_options(o: dict[str, Any], command_name: str) -> None:
    """Refuse environment-only options on a text command (no --env given)."""
    for key, flag in (("episodes", "--episodes"), ("plot", "--plot"), ("protocol", "--protocol"),
                      ("termination_reward", "--termination-reward"), ("reward_scale", "--reward-scale"),
                      ("obs_scale", "--obs-scale"), ("min_steps", "--min-steps"), ("greedy", "--greedy")):
        if o.get(key) not in (None, False):
            raise UsageError(f"{flag} applies to environments: use it with 'neocli {command_name} --env ID'")
