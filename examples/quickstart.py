"""Quickstart: learn a text one byte at a time, then let the model continue it.

Run:  python examples/quickstart.py
Uses only the library API (``import neocli as neo``), exactly as pyaogmaneo code would.
"""
import codecs
import time

import numpy as np

import neocli as neo


def main() -> None:
    """Train a 2-layer hierarchy on the Zen of Python (shipped with CPython) and generate from it."""
    import this  # noqa: F401  (prints the text; we read its rot13 source below)

    text = codecs.decode(this.s, "rot13").encode("ascii")
    # A byte is two 16-cell columns (high and low nibble): small columns learn fast.
    def encode(b: int) -> np.ndarray:
        return np.array([b >> 4, b & 15], dtype=np.int32)

    neo.set_global_state(1234)
    h = neo.Hierarchy([neo.IODesc((1, 2, 16), neo.prediction)],
                      [neo.LayerDesc((5, 5, 32)), neo.LayerDesc((5, 5, 32))])
    print(f"\nmodel: state {h.get_state_size()} B, weights {h.get_weights_size()} B")

    start = time.perf_counter()
    steps = 0
    for epoch in range(12):
        h.clear_state()
        correct = 0
        for i, b in enumerate(text):
            pred = h.get_prediction_cis(0)
            correct += int(i > 0 and (pred[0] << 4 | pred[1]) == b)
            h.step([encode(b)])
            steps += 1
        print(f"epoch {epoch + 1:2d}: next-byte accuracy {correct / (len(text) - 1):.3f}")
    print(f"{steps / (time.perf_counter() - start):.0f} steps/s")

    h.save_to_file("quickstart.ohr")
    h = neo.Hierarchy(file_name="quickstart.ohr")
    h.clear_state()
    for b in text[:20]:
        h.step([encode(b)], learn_enabled=False)
    out = bytearray(text[:20])
    for _ in range(200):
        pred = h.get_prediction_cis(0)
        out.append(int(pred[0] << 4 | pred[1]))
        h.step([pred], learn_enabled=False)
    print("\ngenerated from quickstart.ohr:\n" + out.decode("ascii", "replace"))


if __name__ == "__main__":
    main()
