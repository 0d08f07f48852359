"""CartPole with the manual-example setup (decisions D16): neocli vs pyaogmaneo 2.14.4.

Both libraries are driven by the same loop (``drive`` below), written from D16:
observation -> 2x2 grid of 32-cell columns, ``int(sigmoid(3x)*31 + 0.5)``; IOs
``(2,2,32) none`` and ``(1,1,2) action``; two ``LayerDesc((5,5,32))``; default params;
``h.step([obs, [previous action]], True, reward)`` with the reward of the previous
transition (0, or -10 if it terminated); no ``clear_state``; ``set_global_state(seed)``
before construction and ``env.reset(seed=seed)`` for the first episode.

For each seed it prints the episode at which the 20-episode moving average first
reaches 195, the wall time to get there (and the part spent in ``step``), the
ratios, and whether both libraries played identical episodes (they should: actors
are bit-exact for pure RL). The two libraries run alternately, episode by episode,
so a busy machine slows both alike.

    python benchmarks/bench_cartpole.py                 # seeds 0 1 2, up to 400 episodes
    python benchmarks/bench_cartpole.py --seeds 0 --threads 2
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import gymnasium as gym

import neocli
from neocli import rl

TARGET, WINDOW = 195.0, 20


class Driver:
    """The D16 protocol for one library and seed, one episode per call (so runs can interleave)."""

    def __init__(self, lib, seed: int) -> None:
        self.box = rl.encoding_for_env(gym.make("CartPole-v1"), preset="d16").observation[0]  # pure function
        lib.set_global_state(seed)
        self.h = lib.Hierarchy([lib.IODesc((2, 2, 32), lib.none), lib.IODesc((1, 1, 2), lib.action)],
                               [lib.LayerDesc((5, 5, 32)), lib.LayerDesc((5, 5, 32))])
        self.env = gym.make("CartPole-v1")
        self.seed = seed
        self.action, self.reward = 0, 0.0
        self.returns: list[float] = []
        self.wall = self.step_time = 0.0

    def episode(self) -> float:
        """Play one episode (learning on); return its return."""
        h, box = self.h, self.box
        start = time.perf_counter()
        obs, _ = self.env.reset(seed=self.seed if not self.returns else None)
        ret = 0.0
        while True:
            cis = box.encode(obs).tolist()
            t0 = time.perf_counter()
            h.step([cis, [self.action]], True, self.reward)
            self.step_time += time.perf_counter() - t0
            self.action = int(h.get_prediction_cis(1)[0])
            obs, r, term, trunc, _ = self.env.step(self.action)
            ret += r
            self.reward = -10.0 if term else 0.0
            if term or trunc:
                break
        self.wall += time.perf_counter() - start
        self.returns.append(ret)
        return ret

    @property
    def done(self) -> bool:
        """Whether the 20-episode average has reached the target."""
        return rl.episodes_to(self.returns[-WINDOW:], TARGET, WINDOW) is not None

    def result(self) -> dict:
        """The numbers of this run."""
        return {"reached": rl.episodes_to(self.returns, TARGET, WINDOW), "episodes": len(self.returns),
                "steps": int(sum(self.returns)), "wall_s": self.wall, "step_s": self.step_time,
                "returns": self.returns}


def drive(libs: dict, seed: int, max_episodes: int) -> dict:
    """Run every library's driver for ``seed``, alternating episode by episode, so that a
    busy machine slows them alike; each stops at the target or the cap."""
    drivers = {name: Driver(lib, seed) for name, lib in libs.items()}
    for _ in range(max_episodes):
        active = [d for d in drivers.values() if not d.done]
        if not active:
            break
        for d in active:
            d.episode()
    return {name: d.result() for name, d in drivers.items()}


def main() -> None:
    """Parse arguments, run both libraries per seed, print a table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-episodes", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    try:
        import pyaogmaneo
    except ImportError:
        pyaogmaneo = None
        print("pyaogmaneo is not installed: timing neocli only")
    neocli.set_num_threads(args.threads)
    if pyaogmaneo is not None:
        pyaogmaneo.set_num_threads(args.threads)
    print(f"CartPole-v1, D16 protocol, {args.threads} thread(s), python {platform.python_version()}, "
          f"gymnasium {gym.__version__}")
    head = f"{'seed':>4}  {'lib':<10} {'episodes to 195':>15} {'steps':>7} {'wall s':>7} {'step s':>7} {'us/step':>8}"
    print(head)
    results = []
    libs = {"neocli": neocli, **({"pyaogmaneo": pyaogmaneo} if pyaogmaneo is not None else {})}
    for seed in args.seeds:
        row = {"seed": seed, **drive(libs, seed, args.max_episodes)}
        for name in libs:
            r = row[name]
            reached = r["reached"] if r["reached"] is not None else f">{args.max_episodes}"
            print(f"{seed:>4}  {name:<10} {reached!s:>15} {r['steps']:>7} {r['wall_s']:>7.2f} {r['step_s']:>7.2f} "
                  f"{1e6 * r['step_s'] / max(1, r['steps']):>8.0f}")
        if pyaogmaneo is not None:
            a, b = row["neocli"], row["pyaogmaneo"]
            row["identical_episodes"] = a["returns"] == b["returns"]
            row["wall_ratio"] = b["wall_s"] / a["wall_s"]
            row["step_ratio"] = b["step_s"] / a["step_s"]
            print(f"{'':>4}  identical episodes: {'yes' if row['identical_episodes'] else 'NO'}; "
                  f"pyaogmaneo/neocli time: wall {row['wall_ratio']:.2f}x, step {row['step_ratio']:.2f}x")
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
