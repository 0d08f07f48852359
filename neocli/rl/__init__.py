"""Reinforcement learning in gymnasium environments with a Sparse Predictive Hierarchy.

An agent is a :class:`~neocli.Hierarchy` whose first IO ports receive the encoded
observation and whose last ports are ``action`` ports (spec §7). This module turns
a gymnasium environment's spaces into those ports (:func:`encoding_for_env`), builds
the hierarchy (:func:`build_hierarchy`), and drives it through episodes
(:class:`Runner`) the way a pyaogmaneo user drives it by hand::

    import gymnasium as gym
    import neocli as neo
    from neocli import rl

    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env, preset="d16")        # decisions D16
    h = rl.build_hierarchy(enc, seed=0)                 # 2 x LayerDesc((5,5,32))
    runner = rl.Runner(env, h, enc, rl.Protocol.d16(), seed=0)
    returns = runner.run(300)

Choices, each documented where it is made:

* **Observations** (:class:`BoxEncoder`, :class:`DiscreteEncoder`,
  :class:`MultiDiscreteEncoder`, :class:`ImageEncoderPart`). A ``Box`` of floats is
  flattened and each value becomes one column of ``bins`` cells: linearly between the
  declared bounds when both are finite, through the squashing function
  ``sigmoid(scale*x)`` otherwise. ``Discrete``/``MultiDiscrete``/``MultiBinary``
  values are the cell indices themselves. A ``uint8`` ``Box`` shaped ``HxW`` or
  ``HxWxC`` is an image and goes through :class:`neocli.ImageEncoder`. A ``Tuple`` of
  these gets one IO port per element. Anything else (``Dict``, ``Text``, ``Graph``,
  nested tuples, ...) is refused with a :class:`~neocli.NeoError`.
* **Actions** (:class:`ActionDecoder`). ``Discrete(n)`` is one action column of ``n``
  cells. ``MultiDiscrete`` with equal ``nvec`` (and ``MultiBinary``) is one action port
  with one column per component; unequal ``nvec`` gets one port per component, so
  the actor can never sample an action outside a component's range. Continuous
  (``Box``) actions are refused: discretise them first.
* **Rewards** (:class:`Protocol`). The reward passed with a step belongs to the
  previous transition (spec §7.3, decisions D16): it is ``reward_scale * r`` plus
  ``termination_reward`` when that transition terminated (truncation by a time limit
  is not punished).
* **Episodes**. By default the state is cleared at every episode start, and each
  episode ends with one more step on the final observation, so the last transition's
  reward is learned before the clear. ``Protocol(clear_state=False)`` follows
  D16 instead: no clear, and the last reward of an episode arrives with the first
  observation of the next one.
* **Seeds**. :func:`build_hierarchy` calls ``set_global_state(seed)`` before
  construction (the same initial weights as pyaogmaneo); the runner passes ``seed``
  to the first ``env.reset`` and lets the environment's own generator continue from
  there, so a run repeats exactly. The environment's spaces are never modified (no
  seeding or replacing of ``action_space``/``observation_space``).

Every encoding is described by a JSON-serialisable dict (:meth:`Encoding.to_dict`),
stored in the ``.ohr`` header by :func:`agent_meta` and rebuilt by
:meth:`Encoding.from_dict`.

The package is split along its seams: :mod:`neocli.rl.envs` (making environments,
their generator state), :mod:`neocli.rl.encoding` (spaces <-> IO ports),
:mod:`neocli.rl.agent` (the hierarchy, the protocol, agent files),
:mod:`neocli.rl.runner` (episodes) and :mod:`neocli.rl.training` (the training and
evaluation loops with checkpoints and exact resume, what ``neocli rl`` runs). Every
public name is importable from ``neocli.rl`` itself.
"""
from .agent import (
    Protocol, agent_from_header, agent_meta, build_hierarchy, check_ports, describe_agent, load_agent, save_agent,
)
from .encoding import (
    DEFAULT_BINS, DEFAULT_SQUASH_SCALE, ENCODING_FORMAT, MAX_LINEAR_RANGE, ActionDecoder, BoxEncoder,
    DiscreteEncoder, Encoding, ImageEncoderPart, MultiDiscreteEncoder, encoding_for_env, grid_for, is_image_space,
)
from .envs import env_rng_state, make_env, set_env_rng_state
from .runner import Episode, Runner, episodes_to, moving_average, plot_learning_curve
from .training import (
    AgentOptions, AgentResult, EpisodeProgress, Evaluation, evaluate_agent, require_matplotlib, train_agent,
)

__all__ = [
    "ENCODING_FORMAT", "DEFAULT_BINS", "DEFAULT_SQUASH_SCALE", "MAX_LINEAR_RANGE", "make_env", "grid_for",
    "BoxEncoder", "DiscreteEncoder", "MultiDiscreteEncoder", "ImageEncoderPart", "ActionDecoder", "Encoding",
    "encoding_for_env", "build_hierarchy", "Protocol", "Episode", "Runner", "moving_average", "episodes_to",
    "env_rng_state", "set_env_rng_state", "agent_meta", "save_agent", "agent_from_header", "load_agent",
    "plot_learning_curve", "is_image_space", "describe_agent", "check_ports",
    "AgentOptions", "AgentResult", "EpisodeProgress", "Evaluation", "train_agent", "evaluate_agent",
    "require_matplotlib",
]
