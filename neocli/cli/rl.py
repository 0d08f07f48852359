"""``neocli rl train`` / ``neocli rl eval``: agents in gymnasium environments (``neocli.rl``)."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer
from tqdm import tqdm

from .. import rl, training
from ._common import apply_threads, check_paths, refuse_reference
from .app import app, carry_on_interrupt, command, echo_err
from ._options import (CKPT, RUN, CheckpointDir, Dendrites, JsonSummary, Keep, Meta, RecRadius, Threads,
                       UpRadius, down_radius_option, hidden_option, layers_option)

rl_app = typer.Typer(name="rl", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                     context_settings={"help_option_names": ["-h", "--help"]},
                     help="Reinforcement learning: train and evaluate agents in gymnasium environments.")
app.add_typer(rl_app, name="rl")

ENV = "Environment and rewards"
WINDOW = rl.training.WINDOW
# train's architecture flags with the agents' defaults (neocli.rl.training).
AgentLayers = layers_option(2)
AgentHidden = hidden_option("5x5x32")
AgentDownRadius = down_radius_option("2")


class _EpisodeBar:
    """An ``rl.EpisodeProgress`` callback: a tqdm bar and, unless quiet, one line per episode."""

    def __init__(self, env_id: str, quiet: bool) -> None:
        self.env_id, self.quiet, self.bar = env_id, quiet, None

    def __call__(self, p: rl.EpisodeProgress) -> None:
        if self.bar is None:
            self.bar = tqdm(total=p.episodes, initial=p.episode - 1, desc=self.env_id, unit="ep", file=sys.stderr,
                            disable=True if self.quiet else None, mininterval=0.5, leave=False)
        self.bar.update(1)
        self.bar.set_postfix_str(f"return {p.ret:g}  avg{WINDOW} {p.average:.1f}", refresh=False)
        if not self.quiet:
            echo_err(f"episode {p.episode}/{p.episodes}: return {p.ret:g}  average({WINDOW}) {p.average:.1f}  "
                     f"steps {p.length}")

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


def _report(res: rl.AgentResult, env_id: str, plot: str | None, quiet: bool, json_out: bool) -> None:
    t, returns = res.record, res.returns
    ma = rl.moving_average(returns, WINDOW)
    if not quiet:
        reached = rl.episodes_to(returns, 195.0, WINDOW) if env_id.startswith("CartPole") else None
        extra = f", 20-episode average reached 195 at episode {reached}" if reached else ""
        echo_err(f"saved '{res.output}' ({t['episode']} episodes, {t['steps']} steps, final {WINDOW}-episode "
                 f"average {ma[-1]:.1f}{extra})")
        if plot:
            echo_err(f"learning curve written to '{plot}'")
    if json_out:
        s = rl.Evaluation(env_id, returns, 0, 0.0, 0, False).summary()
        print(json.dumps({"model": res.output, "env": env_id, "episodes": t["episode"], "steps": t["steps"],
                          "seed": t["seed"], "returns": returns, "moving_average": ma[-1] if ma else None,
                          "best_moving_average": max(ma) if ma else None,
                          **{f"return_{k}": v for k, v in s.items()},
                          "encoding": res.encoding.describe(), "protocol": res.protocol.to_dict(),
                          "sizes": {"state": res.hierarchy.get_state_size(),
                                    "weights": res.hierarchy.get_weights_size(),
                                    "total": res.hierarchy.get_size()}}, indent=2))


def build_agent_options(*, env: str, episodes: int | None = None, protocol: str | None = None,
                        reset_on: str | None = None, bins: int | None = None, obs_scale: float | None = None,
                        termination_reward: float | None = None, reward_scale: float | None = None,
                        min_steps: int | None = None, layers: int | None = None, hidden: str | None = None,
                        up_radius: int | None = None, down_radius: int | None = None,
                        recurrent_radius: int | None = None, dendrites: int | None = None,
                        checkpoint_dir: str | None = None, checkpoint_every: int | None = None,
                        keep: int | None = None, seed: int | None = None, threads: int | None = None,
                        meta: list[str] | None = None) -> rl.AgentOptions:
    """The option record of ``neocli rl train``'s flags (validated by the library)."""
    arch = training.Architecture(layers=layers, hidden=hidden, up_radius=up_radius, down_radius=down_radius,
                                 recurrent_radius=recurrent_radius, dendrites=dendrites)
    return rl.AgentOptions(env=env, episodes=episodes, protocol=protocol, reset_on=reset_on, bins=bins,
                           obs_scale=obs_scale, termination_reward=termination_reward, reward_scale=reward_scale,
                           min_steps=min_steps, architecture=arch, checkpoint_dir=checkpoint_dir,
                           checkpoint_every=checkpoint_every or 0, keep=keep, seed=seed, threads=threads,
                           meta=training.parse_meta(meta))


@rl_app.command("train")
@command
def rl_train(
    env: Annotated[str, typer.Option("--env", metavar="ID", help="gymnasium environment id, e.g. CartPole-v1.", show_default=False, rich_help_panel=ENV)],
    output: Annotated[str, typer.Option("--output", "-o", metavar="PATH", help="Agent file to write (.ohr).", show_default=False, rich_help_panel=RUN)],
    episodes: Annotated[Optional[int], typer.Option("--episodes", metavar="N", help="Episodes to train, in total (default 100).", rich_help_panel=RUN)] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", metavar="NAME", help="default, or d16 (the manual-example CartPole setup).", rich_help_panel=ENV)] = None,
    reset_on: Annotated[Optional[str], typer.Option("--reset-on", metavar="WHEN", help="clear_state() at: episode (default) | none.", rich_help_panel=ENV)] = None,
    bins: Annotated[Optional[int], typer.Option("--bins", metavar="N", help="Cells per observation value (default 32).", rich_help_panel=ENV)] = None,
    obs_scale: Annotated[Optional[float], typer.Option("--obs-scale", metavar="S", help="s in sigmoid(s*x) for observation values without finite bounds (default 1).", rich_help_panel=ENV)] = None,
    termination_reward: Annotated[Optional[float], typer.Option("--termination-reward", metavar="R", help="Reward added when an episode terminates (not on truncation), e.g. -10 (default 0).", rich_help_panel=ENV)] = None,
    reward_scale: Annotated[Optional[float], typer.Option("--reward-scale", metavar="F", help="Factor on the environment's reward (default 1; 0 ignores it).", rich_help_panel=ENV)] = None,
    min_steps: Annotated[Optional[int], typer.Option("--min-steps", metavar="N", help="Actor min_steps (default 1 when the state is cleared every episode, else 16).", rich_help_panel=ENV)] = None,
    layers: AgentLayers = None,
    hidden: AgentHidden = None,
    up_radius: UpRadius = None,
    down_radius: AgentDownRadius = None,
    recurrent_radius: RecRadius = None,
    dendrites: Dendrites = None,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", metavar="N", help="Seed of the weights and of the first env.reset (default 0; with --resume the agent's own, and another one is refused).", show_default=False, rich_help_panel=RUN)] = None,
    threads: Threads = None,
    meta: Meta = None,
    plot: Annotated[Optional[str], typer.Option("--plot", metavar="PATH", help="Write the learning curve (returns and their 20-episode average) to this PNG.", rich_help_panel=RUN)] = None,
    checkpoint_dir: CheckpointDir = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", metavar="N", help="Checkpoint every N episodes.", rich_help_panel=CKPT)] = None,
    keep: Keep = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="PATH", help="Continue an agent or checkpoint exactly (--episodes is the total).", rich_help_panel=CKPT)] = None,
    init: Annotated[Optional[str], typer.Option("--init", metavar="PATH", help="Start from an agent's weights only.", rich_help_panel=CKPT)] = None,
    json_out: JsonSummary = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-episode lines.", rich_help_panel=RUN)] = False,
) -> None:
    """Train an agent in the gymnasium environment --env and write it to -o AGENT.ohr."""
    opts = build_agent_options(env=env, episodes=episodes, protocol=protocol, reset_on=reset_on, bins=bins,
                               obs_scale=obs_scale, termination_reward=termination_reward, reward_scale=reward_scale,
                               min_steps=min_steps, layers=layers, hidden=hidden, up_radius=up_radius,
                               down_radius=down_radius, recurrent_radius=recurrent_radius, dendrites=dendrites,
                               checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, keep=keep,
                               seed=seed, threads=threads, meta=meta)
    check_paths(inputs=[(resume, "model"), (init, "model")], outputs=[output, plot])
    if plot:
        rl.require_matplotlib()
    bar = _EpisodeBar(env, quiet)
    # What a resume command must repeat; the agent pins its episodes, environment setup,
    # architecture and seed.
    carried = [("--checkpoint-dir", checkpoint_dir), ("--checkpoint-every", checkpoint_every), ("--keep", keep),
               ("--threads", threads), ("--plot", plot), ("--quiet", quiet), ("--json", json_out)]
    try:
        with carry_on_interrupt(carried):
            res = rl.train_agent(opts, output=output, progress=bar, resume=resume, init=init)
    finally:
        bar.close()
    if plot:
        rl.plot_learning_curve(res.returns, plot, WINDOW, title=f"{env}: neocli agent")
    _report(res, env, plot, quiet, json_out)


def _print_eval(model: str, ev: rl.Evaluation, episodes: int, json_out: bool) -> None:
    s: dict[str, Any] = ev.summary()
    if json_out:
        print(json.dumps({"model": model, "env": ev.env, "episodes": episodes, "seed": ev.seed, "greedy": ev.greedy,
                          "returns": ev.returns, **s, "steps": ev.steps, "seconds": ev.seconds}, indent=2))
    else:
        print(f"{ev.env}: {episodes} episodes, learning off{', greedy' if ev.greedy else ''}: "
              f"return mean {s['mean']:.2f}  min {s['min']:g}  max {s['max']:g}  (std {s['std']:.2f})")


@rl_app.command("eval")
@command
def rl_eval(
    model: Annotated[str, typer.Argument(metavar="AGENT", help="Agent file (.ohr) from neocli rl train.", show_default=False)],
    env: Annotated[Optional[str], typer.Option("--env", metavar="ID", help="gymnasium environment id (default: the one AGENT was trained on; another one must have spaces that fit the agent).", show_default=False)] = None,
    episodes: Annotated[int, typer.Option("--episodes", min=1, metavar="N", help="Episodes to play.")] = rl.training.DEFAULT_EVAL_EPISODES,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, max=training.MAX_SEED, metavar="N", help="Seed of the first env.reset.")] = 0,
    greedy: Annotated[bool, typer.Option("--greedy", help="Take the most probable action instead of sampling.")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", min=1, metavar="N", help="Maximum threads.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the returns as JSON to stdout.")] = False,
) -> None:
    """Play AGENT in its environment (or --env) with learning off: mean/min/max return."""
    check_paths(inputs=[(model, "agent")])
    refuse_reference(model)
    apply_threads(threads)
    bar = tqdm(total=episodes, desc=f"eval {env or ''}".rstrip(), unit="ep", file=sys.stderr, disable=None, mininterval=0.5,
               leave=False)
    try:
        ev = rl.evaluate_agent(model, env, episodes=episodes, seed=seed, greedy=greedy,
                               progress=lambda done: bar.update(1))
    finally:
        bar.close()
    if ev.note:
        echo_err(f"note: {ev.note}")
    _print_eval(model, ev, episodes, json_out)
