"""Reinforcement learning in gymnasium environments: encodings, the runner, the CLI, CartPole."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
from gymnasium import spaces  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import neocli as neo  # noqa: E402
from neocli import ohr, rl  # noqa: E402
from neocli.cli.app import app  # noqa: E402  (importing neocli.cli registers every command)


def run(*args):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def d16_cell(x: float) -> int:
    """Decisions D16, written out with Python floats: int(sigmoid(3x)*31 + 0.5)."""
    sig = math.tanh((3.0 * x) / 2) / 2 + 0.5
    return int(sig * 31 + 0.5)


# ---------------------------------------------------------------------------
# small environments


class DotEnv(gym.Env):
    """A uint8 image with a bright block in its left or right half; reward 1 for naming the half."""

    def __init__(self, shape=(12, 16, 3)):
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)
        self.shape = shape

    def _obs(self):
        img = np.zeros(self.shape, np.uint8)
        w = self.shape[1] // 2
        img[:, self._side * w:(self._side + 1) * w] = 200
        return img

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._side = int(self.np_random.integers(2))
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action)
        r = float(action == self._side)
        self._t += 1
        self._side = int(self.np_random.integers(2))
        return self._obs(), r, False, self._t >= 8, {}


class PickEnv(gym.Env):
    """Observation o in {0,1,2}; a MultiDiscrete action is rewarded per component equal to o mod n_i."""

    def __init__(self, nvec=(3, 3), start=None):
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.MultiDiscrete(list(nvec), start=start)
        self.nvec = np.array(nvec)
        self.start = np.zeros(len(nvec), dtype=np.int64) if start is None else np.array(start)
        self.actions = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._o = int(self.np_random.integers(3))
        return self._o, {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action)), action
        self.actions.append(np.asarray(action).copy())
        r = float(np.mean(np.asarray(action) - self.start == self._o % self.nvec))
        self._t += 1
        self._o = int(self.np_random.integers(3))
        return self._o, r, False, self._t >= 50, {}


class SpaceEnv(gym.Env):
    """An environment with arbitrary spaces that is never stepped."""

    def __init__(self, obs, act):
        self.observation_space = obs
        self.action_space = act

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


gym.register("NeocliTestDot-v0", entry_point=DotEnv)
gym.register("NeocliTestDict-v0", entry_point=lambda: SpaceEnv(spaces.Dict({"a": spaces.Discrete(2)}),
                                                                 spaces.Discrete(2)))


def space_snapshot(env):
    """Everything about an env's spaces a runner could change: reprs, bounds, RNGs."""
    def snap(s):
        d = {"repr": repr(s), "rng": s._np_random}
        if isinstance(s, spaces.Box):
            d.update(low=s.low.copy(), high=s.high.copy(), dtype=s.dtype)
        return d
    return [snap(env.observation_space), snap(env.action_space)]


def assert_same_spaces(a, b):
    for x, y in zip(a, b):
        assert x["repr"] == y["repr"] and x["rng"] is y["rng"]
        if "low" in x:
            assert np.array_equal(x["low"], y["low"]) and np.array_equal(x["high"], y["high"])
            assert x["dtype"] == y["dtype"]


# ---------------------------------------------------------------------------
# encodings


def test_d16_encoding_exact_values():
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env, preset="d16")
    assert [io.size for io in enc.io_descs()] == [(2, 2, 32), (1, 1, 2)]
    assert [io.io_type for io in enc.io_descs()] == [neo.none, neo.action]
    box = enc.observation[0]
    # Hand-computed: sigmoid(0)=.5 -> 16; sigmoid(3)=.9526 -> 30; sigmoid(-3)=.0474 -> 1; saturation.
    assert box.encode(np.array([0.0, 1.0, -1.0, 100.0], np.float32)).tolist() == [16, 30, 1, 31]
    assert box.encode([-100.0, 0.2, -0.2, 1e30]).tolist() == [0, 20, 11, 31]  # sigmoid(.6)=.6457
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.normal(0, 1, 4000), rng.normal(0, 0.05, 4000)]).astype(np.float32)
    got = np.concatenate([box.encode(xs[i:i + 4]) for i in range(0, len(xs), 4)])
    want = [d16_cell(float(x)) for x in xs]
    assert got.dtype == np.int32 and got.tolist() == want


def test_d16_bin_edges_are_exact():
    box = rl.BoxEncoder((1,), 32, [None], [None], 3.0)
    # Values just either side of the edge between cells k and k+1 (where sigmoid(3x)*31 + .5 = k + 1).
    for k in range(31):
        u = (k + 0.5) / 31
        edge = 2 * math.atanh(2 * u - 1) / 3
        for x in (math.nextafter(edge, -1e9), edge, math.nextafter(edge, 1e9)):
            assert box.encode([x]).tolist() == [d16_cell(x)]


def test_auto_encoding_uses_finite_bounds_and_squashes_the_rest():
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env)  # x in +-4.8 and angle in +-0.419 are bounded, velocities are not
    box = enc.observation[0]
    assert box.io_size == (2, 2, 32)
    assert box.low[1] is None and box.low[3] is None
    assert box.low[0] == pytest.approx(-4.8) and box.high[2] == pytest.approx(0.41887903)
    # linear: (x - low) / (high - low) * 31 + .5; squashed: sigmoid(x) * 31 + .5
    cells = box.encode([2.4, 1.0, -0.41887903, -1.0]).tolist()
    assert cells == [int(0.75 * 31 + 0.5), int((math.tanh(0.5) / 2 + 0.5) * 31 + 0.5), 0,
                     int((math.tanh(-0.5) / 2 + 0.5) * 31 + 0.5)]
    assert box.encode([99.0, 0.0, 99.0, 0.0]).tolist() == [31, 16, 31, 16]  # clipped at the bounds
    with pytest.raises(neo.NeoError, match="NaN"):
        box.encode([0.0, float("nan"), 0.0, 0.0])
    with pytest.raises(neo.NeoError, match="expected 4 values"):
        box.encode([0.0, 0.0])


def test_grid_is_the_most_square_exact_factorisation():
    assert [rl.grid_for(n) for n in (1, 2, 4, 6, 7, 8, 9, 12)] == \
        [(1, 1), (2, 1), (2, 2), (3, 2), (7, 1), (4, 2), (3, 3), (4, 3)]
    enc = rl.encoding_for_env(gym.make("Acrobot-v1"))
    assert [io.size for io in enc.io_descs()] == [(3, 2, 32), (1, 1, 3)]


def test_huge_declared_bounds_are_treated_as_unbounded():
    big = np.finfo(np.float32).max
    env = SpaceEnv(spaces.Box(np.array([-big, 0.0], np.float32), np.array([big, 10.0], np.float32), dtype=np.float32),
                   spaces.Discrete(2))
    box = rl.encoding_for_env(env).observation[0]
    assert box.low == [None, 0.0]
    assert box.encode([1e6, 5.0]).tolist() == [31, 16]


def test_encoding_description_is_json_and_round_trips():
    for env, kw in ((gym.make("CartPole-v1"), {"preset": "d16"}), (gym.make("CartPole-v1"), {"bins": 16}),
                    (gym.make("Blackjack-v1"), {}), (PickEnv((2, 3), start=[1, -1]), {}),
                    (SpaceEnv(spaces.MultiBinary(3), spaces.MultiBinary(2)), {})):
        enc = rl.encoding_for_env(env, **kw)
        text = json.dumps(enc.to_dict(), allow_nan=False)
        back = rl.Encoding.from_dict(json.loads(text))
        assert back.to_dict() == enc.to_dict()
        for _ in range(20):
            obs = env.observation_space.sample()
            assert [a.tolist() for a in back.encode_observation(obs)] == \
                [a.tolist() for a in enc.encode_observation(obs)]
    with pytest.raises(neo.NeoError, match="not an RL encoding"):
        rl.Encoding.from_dict({"format": "something else"})
    with pytest.raises(neo.NeoError, match="invalid RL encoding"):
        rl.Encoding.from_dict({"format": rl.ENCODING_FORMAT, "observation": [{"kind": "box"}]})


def test_discrete_tuple_and_multibinary_observations():
    enc = rl.encoding_for_env(gym.make("Blackjack-v1"))
    assert [io.size for io in enc.io_descs()] == [(1, 1, 32), (1, 1, 11), (1, 1, 2), (1, 1, 2)]
    assert [a.tolist() for a in enc.encode_observation((14, 10, 1))] == [[14], [10], [1]]
    enc = rl.encoding_for_env(gym.make("FrozenLake-v1"))
    assert [io.size for io in enc.io_descs()] == [(1, 1, 16), (1, 1, 4)]
    enc = rl.encoding_for_env(SpaceEnv(spaces.MultiBinary((2, 2)), spaces.Discrete(3, start=-1)))
    assert [io.size for io in enc.io_descs()] == [(2, 2, 2), (1, 1, 3)]
    assert enc.encode_observation(np.array([[1, 0], [0, 1]], np.int8))[0].tolist() == [1, 0, 0, 1]
    assert enc.action.decode([np.array([0])]) == -1
    with pytest.raises(neo.NeoError, match="outside Discrete"):
        rl.DiscreteEncoder(4).encode(4)


def test_multidiscrete_actions_equal_sizes_share_a_port_unequal_are_split():
    enc = rl.encoding_for_env(PickEnv((3, 3)))
    assert enc.action.io_sizes == [(2, 1, 3)]
    assert enc.action.decode([np.array([2, 0])]).tolist() == [2, 0]
    assert [c.tolist() for c in enc.action.encode([1, 2])] == [[1, 2]]
    enc = rl.encoding_for_env(PickEnv((2, 3), start=[1, -1]))
    assert enc.action.io_sizes == [(1, 1, 2), (1, 1, 3)]
    assert enc.action.decode([np.array([1]), np.array([0])]).tolist() == [2, -1]
    assert [c.tolist() for c in enc.action.encode(np.array([1, 1]))] == [[0], [2]]
    with pytest.raises(neo.NeoError, match="component 1 = 2 is outside"):
        enc.action.encode([1, 2])
    enc = rl.encoding_for_env(SpaceEnv(spaces.Discrete(2), spaces.MultiBinary(3)))
    a = enc.action.decode([np.array([1, 0, 1])])
    assert a.dtype == np.int8 and enc.action.io_sizes == [(3, 1, 2)]


@pytest.mark.parametrize("nvec, chance", [((3, 3), 1 / 3), ((2, 3), (1 / 2 + 1 / 3) / 2)])
def test_multidiscrete_agent_acts_in_range_and_learns(nvec, chance):
    env = PickEnv(nvec, start=[2] * len(nvec))
    enc = rl.encoding_for_env(env)
    h = rl.build_hierarchy(enc, [neo.LayerDesc((4, 4, 16))], seed=1)
    runner = rl.Runner(env, h, enc, rl.Protocol(clear_state=False), seed=1)
    rets = runner.run(100)
    assert len(env.actions) == 5000  # every action passed the space's own contains() check
    hit = np.mean(rets[-10:]) / 50
    assert hit > chance + 0.08, (hit, chance)


def test_unsupported_spaces_are_clear_errors():
    with pytest.raises(neo.NeoError, match="unsupported observation space Dict"):
        rl.encoding_for_env(gym.make("NeocliTestDict-v0"))
    with pytest.raises(neo.NeoError, match="unsupported observation space Text"):
        rl.encoding_for_env(SpaceEnv(spaces.Text(5), spaces.Discrete(2)))
    with pytest.raises(neo.NeoError, match="unsupported observation element 1"):
        rl.encoding_for_env(SpaceEnv(spaces.Tuple((spaces.Discrete(2), spaces.Tuple((spaces.Discrete(2),)))),
                                     spaces.Discrete(2)))
    with pytest.raises(neo.NeoError, match="continuous action spaces"):
        rl.encoding_for_env(gym.make("Pendulum-v1"))
    with pytest.raises(neo.NeoError, match="unsupported action space"):
        rl.encoding_for_env(SpaceEnv(spaces.Discrete(2), spaces.Tuple((spaces.Discrete(2),))))
    with pytest.raises(neo.NeoError, match="unknown encoding preset"):
        rl.encoding_for_env(gym.make("CartPole-v1"), preset="d17")
    with pytest.raises(neo.NeoError, match="preset 'd16' fixes"):
        rl.encoding_for_env(gym.make("CartPole-v1"), preset="d16", bins=16)
    with pytest.raises(neo.NeoError, match="cannot make environment 'NoSuchEnv-v0'"):
        rl.make_env("NoSuchEnv-v0")


def test_runner_refuses_mismatched_hierarchies_and_environments():
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env)
    h = neo.Hierarchy([neo.IODesc((2, 2, 32), neo.none), neo.IODesc((1, 1, 2), neo.prediction)],
                      [neo.LayerDesc((3, 3, 8))])
    with pytest.raises(neo.NeoError, match="IO 1: the encoding needs a 1x1x2 action port"):
        rl.Runner(env, h, enc)
    h = rl.build_hierarchy(enc, [neo.LayerDesc((3, 3, 8))])
    with pytest.raises(neo.NeoError, match="expects a Box of shape"):
        rl.Runner(gym.make("Acrobot-v1"), h, enc)
    with pytest.raises(TypeError):
        rl.Runner(env, "h", enc)
    runner = rl.Runner(env, h, enc, seed=3)
    with pytest.raises(neo.NeoError, match="greedy actions need learning off"):
        runner.run_episode(learn=True, greedy=True)
    with pytest.raises(neo.NeoError, match="seed must be"):
        rl.Runner(env, h, enc, seed=-1)


# ---------------------------------------------------------------------------
# the runner


def manual_d16(seed: int, episodes: int) -> list[float]:
    """Decisions D16 written out by hand, with the plain Python encoding."""
    neo.set_global_state(seed)
    h = neo.Hierarchy([neo.IODesc((2, 2, 32), neo.none), neo.IODesc((1, 1, 2), neo.action)],
                      [neo.LayerDesc((5, 5, 32)), neo.LayerDesc((5, 5, 32))])
    env = gym.make("CartPole-v1")
    action, reward, out = 0, 0.0, []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        ret = 0.0
        while True:
            h.step([[d16_cell(float(x)) for x in obs], [action]], True, reward)
            action = int(h.get_prediction_cis(1)[0])
            obs, r, term, trunc, _ = env.step(action)
            ret += r
            reward = -10.0 if term else 0.0
            if term or trunc:
                break
        out.append(ret)
    return out


def d16_runner(seed: int):
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env, preset="d16")
    h = rl.build_hierarchy(enc, seed=seed)
    return rl.Runner(env, h, enc, rl.Protocol.d16(), seed=seed)


def test_runner_follows_the_d16_protocol_exactly():
    assert d16_runner(7).run(25) == manual_d16(7, 25)


def test_same_seed_repeats_a_run_and_another_seed_does_not():
    a, b, c = d16_runner(4), d16_runner(4), d16_runner(5)
    ra, rb, rc = a.run(15), b.run(15), c.run(15)
    assert ra == rb and ra != rc
    assert np.array_equal(a.h.serialize_weights_to_buffer(), b.h.serialize_weights_to_buffer())
    assert np.array_equal(a.h.serialize_state_to_buffer(), b.h.serialize_state_to_buffer())


def test_default_protocol_is_deterministic_and_thread_count_independent():
    def go(threads):
        neo.set_num_threads(threads)
        env = gym.make("CartPole-v1")
        enc = rl.encoding_for_env(env)
        h = rl.build_hierarchy(enc, seed=2)
        r = rl.Runner(env, h, enc, seed=2)
        return r.run(12), h.serialize_weights_to_buffer()
    (r1, w1), (r2, w2) = go(1), go(2)
    assert r1 == r2 and np.array_equal(w1, w2)


def test_clear_state_protocol_clears_and_delivers_the_last_reward(monkeypatch):
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env)
    h = rl.build_hierarchy(enc, [neo.LayerDesc((3, 3, 8))], seed=0)
    calls = []
    real_step, real_clear = h.step, h.clear_state
    monkeypatch.setattr(h, "step", lambda inputs, learn=True, reward=0.0, mimic=0.0:
                        (calls.append(("step", [np.asarray(x).tolist() for x in inputs], reward)),
                         real_step(inputs, learn, reward, mimic))[1])
    monkeypatch.setattr(h, "clear_state", lambda: (calls.append(("clear",)), real_clear())[1])
    runner = rl.Runner(env, h, enc, rl.Protocol(termination_reward=-10.0), seed=0)
    ep1 = runner.run_episode()
    ep2 = runner.run_episode()
    steps = [c for c in calls if c[0] == "step"]
    assert calls[0] == ("clear",) and calls[ep1.length + 2] == ("clear",)
    assert len(steps) == ep1.length + ep2.length + 2  # one closing step per episode
    assert steps[0][1][1] == [0] and steps[0][2] == 0.0  # no previous action, no reward at a start
    assert [s[2] for s in steps[1:ep1.length]] == [1.0] * (ep1.length - 1)
    closing = steps[ep1.length]
    assert ep1.terminated and closing[2] == 1.0 - 10.0  # env reward plus the termination reward
    assert steps[ep1.length + 1][1][1] == [0] and steps[ep1.length + 1][2] == 0.0


def test_spaces_are_never_modified(tmp_path):
    for env in (gym.make("CartPole-v1"), PickEnv((2, 3)), gym.make("Blackjack-v1")):
        before = space_snapshot(env)
        enc = rl.encoding_for_env(env)
        h = rl.build_hierarchy(enc, [neo.LayerDesc((3, 3, 8))], seed=0)
        runner = rl.Runner(env, h, enc, seed=0)
        runner.run(3)
        rl.save_agent(str(tmp_path / "a.ohr"), h, enc, runner.protocol)
        h2, enc2, proto2, _ = rl.load_agent(str(tmp_path / "a.ohr"))
        rl.Runner(env, h2, enc2, proto2, seed=1).run(2, learn=False)
        assert_same_spaces(before, space_snapshot(env))


def test_teacher_actions_are_executed_and_fed_back():
    env = PickEnv((3, 3))
    enc = rl.encoding_for_env(env)
    h = rl.build_hierarchy(enc, [neo.LayerDesc((3, 3, 8))], seed=0)
    runner = rl.Runner(env, h, enc, seed=0)
    ep = runner.run_episode(teacher=lambda o: [o, (o + 1) % 3], mimic=1.0)
    assert ep.ret == pytest.approx(25.0)  # the first component always matches: half the reward
    env.actions.clear()
    runner.run_episode(teacher=lambda o: [0, 0], mimic=1.0, teacher_control=0.0)
    assert any(a.tolist() != [0, 0] for a in env.actions)  # the agent drove; the teacher only labelled
    with pytest.raises(neo.NeoError, match="outside its range"):
        runner.run_episode(teacher=lambda o: [5, 0], mimic=1.0)


def test_imitation_beats_chance_on_cartpole():
    # A short version of examples/cartpole_mimic.py (the README gives the full run's numbers).
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env)
    h = rl.build_hierarchy(enc, seed=0)
    for i in enc.action_ios:
        h.params.ios[i].actor.min_steps = 1
    runner = rl.Runner(env, h, enc, seed=0)
    teacher = lambda o: int(o[2] + 0.5 * o[3] > 0)  # noqa: E731
    runner.run(3, teacher=teacher, mimic=1.0)
    runner.run(30, teacher=teacher, mimic=1.0, teacher_control=0.0)
    alone = runner.run(10, learn=False, greedy=True)
    assert np.mean(alone) > 60, alone  # random play averages about 22


def test_learning_off_leaves_weights_alone():
    r = d16_runner(0)
    r.run(5)
    w = r.h.serialize_weights_to_buffer().copy()
    r.run(3, learn=False)
    assert np.array_equal(w, r.h.serialize_weights_to_buffer())


def test_moving_average_and_episodes_to():
    assert rl.moving_average([1, 2, 3, 4], 2) == [1.0, 1.5, 2.5, 3.5]
    assert rl.episodes_to([0] * 5 + [200] * 3, 100, 4) == 7
    assert rl.episodes_to([300, 300], 195, 20) is None  # only full windows count


# ---------------------------------------------------------------------------
# images


def test_image_observation_goes_through_the_image_encoder(tmp_path):
    env = DotEnv()
    enc = rl.encoding_for_env(env)
    part = enc.observation[0]
    assert isinstance(part, rl.ImageEncoderPart)
    assert part.visible_size == (16, 12, 3) and part.io_size == (2, 2, 16)
    h = rl.build_hierarchy(enc, [neo.LayerDesc((3, 3, 16))], seed=3)
    # The image is fed x-major: the same as stepping a copy of the encoder on img.transpose(1, 0, 2).
    twin = copy.deepcopy(part.encoder)
    obs, _ = env.reset(seed=0)
    got = part.encode(obs, learn=True)
    twin.step([obs.transpose(1, 0, 2).reshape(-1)], True)
    assert got.tolist() == np.asarray(twin.get_hidden_cis()).tolist()
    assert np.array_equal(part.encoder.serialize_weights_to_buffer(), twin.serialize_weights_to_buffer())

    runner = rl.Runner(env, h, enc, rl.Protocol(), seed=0)
    runner.run(5)
    path = str(tmp_path / "img.ohr")
    rl.save_agent(path, h, enc, runner.protocol)
    h2, enc2, proto2, header = rl.load_agent(path)
    assert json.loads(json.dumps(header["rl"]["encoding"])) == enc.to_dict()
    assert np.array_equal(enc2.observation[0].encoder.serialize_weights_to_buffer(),
                          part.encoder.serialize_weights_to_buffer())
    a = rl.Runner(env, h2, enc2, proto2, seed=9).run(4, learn=False)
    h3, enc3, proto3, _ = rl.load_agent(path)
    assert rl.Runner(env, h3, enc3, proto3, seed=9).run(4, learn=False) == a
    # image=False bins the pixels like any other box instead.
    flat = rl.encoding_for_env(env, image=False)
    assert flat.observation[0].io_size == (24, 24, 32)


def test_image_observation_checks():
    part = rl.ImageEncoderPart((4, 5), (2, 2, 8), 2)
    part.build()
    assert part.visible_size == (5, 4, 1)
    assert part.encode(np.zeros((4, 5), np.uint8)).shape == (4,)
    with pytest.raises(neo.NeoError, match="expected uint8"):
        part.encode(np.zeros((4, 5), np.float32))
    with pytest.raises(neo.NeoError, match="expected shape"):
        part.encode(np.zeros((5, 4), np.uint8))
    assert not rl.is_image_space(spaces.Box(0, 255, (128,), np.uint8))  # e.g. Atari RAM: a box
    assert rl.is_image_space(spaces.Box(0, 255, (8, 8, 1), np.uint8))


# ---------------------------------------------------------------------------
# CLI


def test_cli_train_eval_plot_inspect(tmp_path):
    model, png = tmp_path / "agent.ohr", tmp_path / "curve.png"
    r = run("rl", "train", "--env", "CartPole-v1", "-o", model, "--episodes", 4, "--plot", png, "--json", "-s", 3)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["env"] == "CartPole-v1" and out["episodes"] == 4 and len(out["returns"]) == 4
    assert "episode 4/4: return" in r.stderr and "average(20)" in r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    header = ohr.read_header(str(model))
    assert header["rl"]["env_id"] == "CartPole-v1"
    assert header["rl"]["encoding"]["format"] == rl.ENCODING_FORMAT
    assert header["training"]["returns"] == out["returns"] and header["training"]["complete"] is True

    r = run("rl", "eval", model, "--env", "CartPole-v1", "--episodes", 5, "--json", "--seed", 11)
    assert r.exit_code == 0, r.stderr
    ev = json.loads(r.stdout)
    assert len(ev["returns"]) == 5
    assert ev["mean"] == pytest.approx(np.mean(ev["returns"])) and ev["min"] == min(ev["returns"])
    assert ev["max"] == max(ev["returns"])
    # The same evaluation through the library, learning off, gives the same episodes.
    h, enc, proto, _ = rl.load_agent(str(model))
    assert rl.Runner(gym.make("CartPole-v1"), h, enc, proto, seed=11).run(5, learn=False) == ev["returns"]
    r = run("rl", "eval", model, "--env", "CartPole-v1", "--episodes", 3)
    assert r.exit_code == 0 and "return mean" in r.stdout and "min" in r.stdout and "max" in r.stdout
    r = run("inspect", model)
    assert r.exit_code == 0 and "RL agent for CartPole-v1" in r.stdout and "4 of 4" in r.stdout


def test_cli_image_environment(tmp_path):
    model = tmp_path / "dot.ohr"
    r = run("rl", "train", "--env", "NeocliTestDot-v0", "-o", model, "--episodes", 3, "--hidden", "3x3x8", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("rl", "eval", model, "--env", "NeocliTestDot-v0", "--episodes", 2, "--json")
    assert r.exit_code == 0, r.stderr
    assert len(json.loads(r.stdout)["returns"]) == 2


@pytest.mark.parametrize("protocol", [[], ["--protocol", "d16"]])
def test_cli_resume_is_exact(tmp_path, protocol):
    full, part = tmp_path / "full.ohr", tmp_path / "part.ohr"
    args = ["--env", "CartPole-v1", "-q", "-s", 2, *protocol]
    assert run("rl", "train", "-o", full, "--episodes", 8, *args).exit_code == 0
    assert run("rl", "train", "-o", part, "--episodes", 5, *args).exit_code == 0
    r = run("rl", "train", "-o", part, "--episodes", 8, "--resume", part, *args)
    assert r.exit_code == 0, r.stderr
    a, b = ohr.read_file(str(full)), ohr.read_file(str(part))
    assert a[0]["training"]["returns"] == b[0]["training"]["returns"]
    for sec in ("state", "weights", "persistent"):
        for name, arr in a[1][sec].items():
            assert np.array_equal(arr, b[1][sec][name]), (sec, name)
    r = run("rl", "train", "-o", part, "--resume", part, *args)
    assert r.exit_code == 1 and "finished its 8 episodes" in r.stderr


def test_cli_resume_compares_an_explicit_seed_zero_included(tmp_path):
    # As for train: a given --seed (0 too) must be the agent's, none means the agent's.
    part = tmp_path / "part.ohr"
    args = ["--env", "CartPole-v1", "-q", "--hidden", "3x3x8"]
    assert run("rl", "train", "-o", part, "--episodes", 2, "-s", 3, *args).exit_code == 0
    for seed in ("0", "4"):
        r = run("rl", "train", "-o", tmp_path / "r.ohr", "--episodes", 3, "--resume", part, "--seed", seed, *args)
        assert r.exit_code == 1 and f"--seed={seed}" in r.stderr and "--seed=3" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "r.ohr").exists()
    for given in ([], ["--seed", "3"]):
        r = run("rl", "train", "-o", tmp_path / "r.ohr", "--episodes", 3, "--resume", part, *given, *args)
        assert r.exit_code == 0, (given, r.stderr)
        assert ohr.read_header(tmp_path / "r.ohr")["training"]["seed"] == 3
    # A new agent without --seed is seed 0.
    assert run("rl", "train", "-o", tmp_path / "z.ohr", "--episodes", 1, *args).exit_code == 0
    assert ohr.read_header(tmp_path / "z.ohr")["training"]["seed"] == 0


def test_cli_init_starts_from_another_agents_weights(tmp_path):
    src, out = tmp_path / "src.ohr", tmp_path / "out.ohr"
    assert run("rl", "train", "--env", "CartPole-v1", "-o", src, "--episodes", 4, "-q", "-s", 1).exit_code == 0
    r = run("rl", "train", "--env", "CartPole-v1", "-o", out, "--episodes", 2, "-q", "-s", 5, "--init", src)
    assert r.exit_code == 0, r.stderr
    # By hand: a fresh seed-5 agent given the source's weights, then the same 2 episodes.
    env = gym.make("CartPole-v1")
    enc = rl.encoding_for_env(env)
    h = rl.build_hierarchy(enc, seed=5)
    h.set_weights_from_buffer(neo.Hierarchy(file_name=str(src)).serialize_weights_to_buffer())
    for i in enc.action_ios:
        h.params.ios[i].actor.min_steps = 1
    returns = rl.Runner(env, h, enc, seed=5).run(2)
    header, secs = ohr.read_file(str(out))
    assert header["training"]["returns"] == returns
    assert np.array_equal(np.concatenate([a.view(np.uint8).reshape(-1) for a in secs["weights"].values()]),
                          h.serialize_weights_to_buffer())
    r = run("rl", "train", "--env", "Acrobot-v1", "-o", out, "--episodes", 1, "--init", src)
    assert r.exit_code == 1 and "--init" in r.stderr


def test_cli_checkpoints(tmp_path):
    ck = tmp_path / "ck"
    r = run("rl", "train", "--env", "CartPole-v1", "-o", tmp_path / "m.ohr", "--episodes", 6, "-q",
            "--checkpoint-dir", ck, "--checkpoint-every", 2, "--keep", 1)
    assert r.exit_code == 0, r.stderr
    files = sorted(p.name for p in ck.iterdir())
    rid = ohr.read_header(tmp_path / "m.ohr")["training"]["run_id"]
    assert files == [f"ckpt-{rid}-e000004-s" + files[0].split("-s")[1]]
    r = run("rl", "train", "--env", "CartPole-v1", "-o", tmp_path / "m2.ohr", "--episodes", 6, "-q",
            "--resume", ck / files[0])
    assert r.exit_code == 0, r.stderr
    a = ohr.read_header(str(tmp_path / "m.ohr"))["training"]["returns"]
    assert ohr.read_header(str(tmp_path / "m2.ohr"))["training"]["returns"] == a
    # checkpoint list shows an agent's episodes where a text model has its epoch
    r = run("rl", "train", "--env", "CartPole-v1", "-o", ck / "late.ohr", "--episodes", 5, "-q")
    assert r.exit_code == 0, r.stderr
    r = run("checkpoint", "list", ck)
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert [(row[0], row[1:3]) for row in rows] == [("late.ohr", ["ep", "5"]), (files[0], ["ep", "4"])][::-1]
    r = run("checkpoint", "list", ck, "--json")
    assert [(x["file"].rsplit("/", 1)[-1], x["episode"], x["epoch"]) for x in json.loads(r.stdout)] == \
        [(files[0], 4, None), ("late.ohr", 5, None)]


def test_cli_errors(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abc abc abc\n" * 5)
    tmodel = tmp_path / "t.ohr"
    assert run("train", text, "-o", tmodel, "--hidden", "3x3x8", "-q").exit_code == 0
    agent = tmp_path / "a.ohr"
    assert run("rl", "train", "--env", "CartPole-v1", "-o", agent, "--episodes", 1, "-q").exit_code == 0
    x = tmp_path / "x.ohr"
    cases = [
        (["rl", "train", "--env", "NoSuchEnv-v0", "-o", x], 1, "cannot make environment 'NoSuchEnv-v0'"),
        (["rl", "train", "--env", "NeocliTestDict-v0", "-o", x], 1, "unsupported observation space Dict"),
        (["rl", "train", "--env", "Pendulum-v1", "-o", x], 1, "continuous action spaces"),
        (["rl", "eval", tmodel, "--env", "CartPole-v1"], 1, "is a text model"),
        (["rl", "eval", agent, "--env", "Acrobot-v1"], 1, "does not fit 'Acrobot-v1'"),
        (["eval", agent, text], 1, "reinforcement-learning agent"),
        (["generate", agent], 1, "reinforcement-learning agent"),
        # RL is its own command group: the sequence commands know no environment options.
        (["train", text, "--env", "CartPole-v1", "-o", x], 2, "No such option: --env"),
        (["train", text, "-o", x, "--episodes", 3], 2, "No such option: --episodes"),
        (["eval", tmodel, text, "--greedy"], 2, "No such option: --greedy"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--codec", "chars"], 2, "No such option: --codec"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--protocol", "d16", "--hidden", "3x3x8"], 2,
         "--hidden cannot be set with protocol d16"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--protocol", "d17"], 2, "--protocol must be"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--episodes", 0], 2, "--episodes must be"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--reset-on", "blank"], 2, "episode or none"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--seed", -1], 2, "--seed must be >= 0"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--keep", 2], 2, "--checkpoint-dir is required"),
        (["rl", "train", "-o", x], 2, "Missing option '--env'"),
        (["train", "-o", x], 2, "missing DATA"),
        (["eval", tmodel], 2, "missing DATA"),
        (["rl", "train", "--env", "CartPole-v1", "-o", x, "--resume", tmodel], 1, "is a text model"),
        (["rl", "train", "--env", "Acrobot-v1", "-o", x, "--resume", agent], 1, "was trained on"),
    ]
    for args, code, phrase in cases:
        r = run(*args)
        assert r.exit_code == code, (args, r.exit_code, r.stderr)
        assert phrase in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error:") or "Error" in r.stderr, (args, r.stderr)


def test_rl_is_its_own_command_group():
    r = run("rl", "--help")
    assert r.exit_code == 0 and "train" in r.stdout and "eval" in r.stdout
    for args in (["train", "--help"], ["eval", "--help"], ["train", "-h"]):
        r = run(*args)
        assert r.exit_code == 0 and "--env" not in r.stdout and "--episodes" not in r.stdout, r.stdout
    r = run("rl", "train", "-h")
    assert r.exit_code == 0 and "--env" in r.stdout and "--episodes" in r.stdout and "--codec" not in r.stdout


def test_cli_plot_without_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "m.ohr"
    r = run("rl", "train", "--env", "CartPole-v1", "-o", out, "--episodes", 1, "--plot", tmp_path / "c.png")
    assert r.exit_code == 1 and "plotting needs matplotlib" in r.stderr
    assert not out.exists()  # refused before training


def test_header_is_plain_json(tmp_path):
    # Agent files need no pickle: the whole description is JSON in the header.
    path = tmp_path / "a.ohr"
    assert run("rl", "train", "--env", "Blackjack-v1", "-o", path, "--episodes", 2, "-q").exit_code == 0
    header = ohr.read_header(str(path))
    json.dumps(header["rl"], allow_nan=False)
    h, enc, proto, _ = rl.load_agent(str(path))
    assert [io.size for io in enc.io_descs()] == [(1, 1, 32), (1, 1, 11), (1, 1, 2), (1, 1, 2)]


# ---------------------------------------------------------------------------
# CartPole learning (decisions D16)


def test_cartpole_d16_reaches_195_within_400_episodes_seed_0():
    runner = d16_runner(0)
    returns = []
    while len(returns) < 400 and rl.episodes_to(returns, 195.0) is None:
        returns.append(runner.run_episode().ret)
    reached = rl.episodes_to(returns, 195.0)
    assert reached is not None and reached <= 400, (len(returns), np.mean(returns[-20:]))


@pytest.mark.slow
def test_cartpole_d16_reaches_195_within_400_episodes_on_3_seeds():
    for seed in (0, 1, 2):
        runner = d16_runner(seed)
        returns = []
        while len(returns) < 400 and rl.episodes_to(returns, 195.0) is None:
            returns.append(runner.run_episode().ret)
        assert rl.episodes_to(returns, 195.0) is not None, (seed, np.mean(returns[-20:]))


@pytest.mark.oracle
def test_pyaogmaneo_driven_the_same_way_plays_the_same_episodes():
    pyao = pytest.importorskip("pyaogmaneo")
    seed, episodes = 1, 40
    box = rl.encoding_for_env(gym.make("CartPole-v1"), preset="d16").observation[0]
    pyao.set_global_state(seed)
    h = pyao.Hierarchy([pyao.IODesc((2, 2, 32), pyao.none), pyao.IODesc((1, 1, 2), pyao.action)],
                       [pyao.LayerDesc((5, 5, 32)), pyao.LayerDesc((5, 5, 32))])
    env = gym.make("CartPole-v1")
    action, reward, theirs = 0, 0.0, []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        ret = 0.0
        while True:
            h.step([box.encode(obs).tolist(), [action]], True, reward)
            action = int(h.get_prediction_cis(1)[0])
            obs, r, term, trunc, _ = env.step(action)
            ret += r
            reward = -10.0 if term else 0.0
            if term or trunc:
                break
        theirs.append(ret)
    assert d16_runner(seed).run(episodes) == theirs


def test_train_agent_interrupt_checkpoints_and_resumes_exactly(tmp_path):
    import os
    import signal

    from neocli import training

    opts = rl.AgentOptions(env="CartPole-v1", episodes=6, seed=4,
                           architecture=training.Architecture(hidden="3x3x8"))

    def stop_after_3(p):
        if p.episode == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(training.Interrupted) as info:
        rl.train_agent(opts, output=str(tmp_path / "a.ohr"), progress=stop_after_3)
    assert info.value.path == str(tmp_path / "a.ohr") and info.value.where.startswith("3 episodes")
    t = ohr.read_header(str(tmp_path / "a.ohr"))["training"]
    assert t["episode"] == 3 and not t["complete"]
    resumed = rl.train_agent(opts, output=str(tmp_path / "a.ohr"), resume=str(tmp_path / "a.ohr"))
    full = rl.train_agent(opts, output=str(tmp_path / "full.ohr"))
    assert resumed.returns == full.returns and len(full.returns) == 6
    a, b = ohr.read_file(str(tmp_path / "a.ohr"))[1], ohr.read_file(str(tmp_path / "full.ohr"))[1]
    assert all(np.array_equal(arr, b[sec][name]) for sec in ("state", "weights") for name, arr in a[sec].items())
    ev = rl.evaluate_agent(str(tmp_path / "full.ohr"), "CartPole-v1", episodes=2, seed=1)
    assert len(ev.returns) == 2 and ev.summary()["mean"] == pytest.approx(np.mean(ev.returns)) and ev.note is None
    with pytest.raises(neo.NeoError) as bad:
        rl.AgentOptions(env="CartPole-v1", protocol="d16", bins=8)
    assert bad.value.field == "bins"


def test_rl_train_shares_trains_flag_declarations_with_the_agents_defaults(tmp_path):
    # One declaration per flag across train and rl train; each help names its command's own
    # default, and those are the defaults the library builds.
    import typer.main

    from neocli import training

    root = typer.main.get_command(app)
    train_cmd, rl_cmd = root.commands["train"], root.commands["rl"].commands["train"]

    def helps(cmd):
        return {p.opts[0]: p.help for p in cmd.params if p.opts and p.opts[0].startswith("--")}

    t, r = helps(train_cmd), helps(rl_cmd)
    for flag in ("--up-radius", "--recurrent-radius", "--dendrites", "--threads", "--meta", "--checkpoint-dir",
                 "--keep", "--json"):
        assert r[flag] == t[flag], flag
    assert r["--down-radius"] == f"Decoder field radius (default {rl.training.AGENT_ARCH_DEFAULTS['down_radius']})."
    assert f"(default {training.ARCH_DEFAULTS['down_radius']}:" in t["--down-radius"]
    assert run("rl", "train", "--env", "CartPole-v1", "-o", tmp_path / "a.ohr", "--episodes", 1, "-q").exit_code == 0
    h = neo.Hierarchy(file_name=str(tmp_path / "a.ohr"))
    size = "x".join(map(str, h.get_hidden_size(0)))
    assert r["--layers"] == f"Number of layers (default {h.get_num_layers()})."
    assert r["--hidden"].endswith(f"(default {size}).")
    assert t["--layers"] == f"Number of layers (default {training.DEFAULT_LAYERS})."
    assert t["--hidden"].endswith(f"(default {'x'.join(map(str, training.DEFAULT_HIDDEN))}).")
