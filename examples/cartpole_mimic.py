"""Imitation learning: an SPH agent learns CartPole from a scripted teacher, then runs alone.

The teacher is a two-term controller on the pole: push right when
``angle + 0.5 * angular_velocity > 0``, else left (it balances for the full 500 steps).
The agent learns with ``mimic=1.0`` (spec §7.3: the imitation weight added to the
actor's policy step) while the action port is told the teacher's choice:

1. behaviour cloning: the teacher drives, the agent watches (10 episodes);
2. teacher labels, agent drives (DAgger style): the agent's own actions are
   executed, so it visits the states its own mistakes lead to, and the teacher
   says what it should have done there (100 episodes);
3. the teacher is gone: the agent plays 20 episodes on its own, learning off
   (sampling its actions), then 20 more taking its most probable action.

Run: ``python examples/cartpole_mimic.py`` (about 20 s on one core; needs gymnasium).
"""
from __future__ import annotations

import time

import numpy as np

import neocli as neo
from neocli import rl


def teacher(obs) -> int:
    """Push towards the side the pole is falling to (angle and angular velocity only)."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def main(seed: int = 0) -> dict:
    """Teach, then test; returns the measured numbers."""
    neo.set_num_threads(1)
    env = rl.make_env("CartPole-v1")
    enc = rl.encoding_for_env(env)                       # bounds where finite, sigmoid otherwise
    h = rl.build_hierarchy(enc, seed=seed)               # set_global_state(seed), 2 x 5x5x32
    for i in enc.action_ios:
        h.params.ios[i].actor.min_steps = 1              # the state is cleared every episode
    runner = rl.Runner(env, h, enc, rl.Protocol(), seed=seed)

    start = time.perf_counter()
    watched = runner.run(10, teacher=teacher, mimic=1.0)                       # 1. teacher drives
    guided = runner.run(100, teacher=teacher, mimic=1.0, teacher_control=0.0)   # 2. agent drives
    taught = time.perf_counter() - start
    alone = runner.run(20, learn=False)                                        # 3. no teacher
    greedy = runner.run(20, learn=False, greedy=True)    # the most probable action, no sampling
    env.close()
    return {"teacher_return": float(np.mean(watched)), "guided_return": float(np.mean(guided[-20:])),
            "agent_return": float(np.mean(alone)), "agent_min": float(min(alone)),
            "agent_max": float(max(alone)), "greedy_return": float(np.mean(greedy)),
            "teaching_seconds": taught, "steps": runner.steps}


if __name__ == "__main__":
    r = main()
    print(f"teacher driving:          mean return {r['teacher_return']:.1f}")
    print(f"agent driving, labelled:  mean return {r['guided_return']:.1f} (last 20 episodes)")
    print(f"agent alone, learning off: mean return {r['agent_return']:.1f} over 20 episodes "
          f"(min {r['agent_min']:g}, max {r['agent_max']:g})")
    print(f"agent alone, greedy:      mean return {r['greedy_return']:.1f} over 20 episodes")
    print(f"teaching took {r['teaching_seconds']:.1f} s ({r['steps']} steps in all)")
