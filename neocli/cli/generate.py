"""``neocli generate``: continue a prompt with a trained model, writing data to stdout."""
from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import numpy as np
import typer

from .. import set_num_threads
from ..codecs import CsvCodec
from ._common import load_model
from .app import CliError, UsageError, app, command


@app.command("generate")
@command
def generate(
    model: Annotated[str, typer.Argument(help="Model file (.ohr) trained with neocli train.", show_default=False)],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Text (or CSV rows) to start from.")] = None,
    prompt_file: Annotated[Optional[str], typer.Option("--prompt-file", "-f", help="Read the prompt from a file, or - for stdin.")] = None,
    length: Annotated[int, typer.Option("--length", "-n", help="Symbols to generate.")] = 200,
    temperature: Annotated[float, typer.Option("--temperature", "-T", help="Sampling temperature; 0 = most likely symbol.")] = 0.0,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", min=0, max=2**64 - 1, help="Seed of the sampling (default: the model's own random stream).", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Maximum threads.")] = None,
    echo_prompt: Annotated[bool, typer.Option("--echo-prompt", help="Write the prompt before the generated data.")] = False,
) -> None:
    """Generate LENGTH symbols from MODEL after feeding it the prompt; only the data goes to stdout.

    Without a prompt, generation continues from the context saved in the model. CSV
    models forecast the next rows in closed loop.
    """
    if length < 0:
        raise UsageError(f"--length must be >= 0, got {length}")
    if not (temperature >= 0.0) or temperature == float("inf"):
        raise UsageError(f"--temperature must be a finite number >= 0, got {temperature}")
    if prompt is not None and prompt_file is not None:
        raise UsageError("give either --prompt or --prompt-file, not both")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        set_num_threads(threads)
    h, header, codec = load_model(model)
    data: bytes | None = None
    if prompt is not None:
        data = prompt.encode("utf-8")
    elif prompt_file is not None:
        if prompt_file == "-":
            data = sys.stdin.buffer.read()
        else:
            if os.path.isdir(prompt_file):
                raise CliError(f"'{prompt_file}' is a directory, not a prompt file")
            if not os.path.exists(prompt_file):
                raise CliError(f"prompt file '{prompt_file}' does not exist")
            with open(prompt_file, "rb") as f:
                data = f.read()
    symbols = codec.parse_prompt(data) if data is not None else []
    if data is not None and not symbols and not isinstance(codec, CsvCodec):
        raise CliError("the prompt is empty")
    # Sampling has its own generator: seeded by --seed, else by the model's RNG
    # position, so the same command gives the same output.
    rng = np.random.default_rng(seed if seed is not None else h.get_rng_state())
    out = sys.stdout.buffer
    if symbols:
        h.clear_state()
        for s in symbols:
            h.step([codec.encode(s)], False)
        if echo_prompt:
            out.write(b"".join(codec.format(s) for s in symbols))
    for _ in range(length):
        sym = codec.choose(h.get_prediction_acts(0), temperature, rng)
        out.write(codec.format(sym))
        out.flush()
        h.step([codec.encode(sym)], False)
    out.flush()
