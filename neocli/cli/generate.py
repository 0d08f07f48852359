"""``neocli generate``: continue a prompt with a trained model, writing data to stdout."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..generation import Controls, check_generation_options, generate as generate_symbols
from ._common import apply_threads, check_paths, load_model
from .app import UsageError, app, command

PROMPT = "Prompt"
SAMPLING = "Sampling"
RUN = "Run"


def _read_prompt(prompt: str | None, prompt_file: str | None) -> bytes | None:
    if prompt is not None:
        return prompt.encode("utf-8")
    if prompt_file == "-":
        return sys.stdin.buffer.read()
    if prompt_file is not None:
        with open(prompt_file, "rb") as f:
            return f.read()
    return None


@app.command("generate")
@command
def generate(
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Model file (.ohr) trained with neocli train, or - for stdin.", show_default=False)],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", metavar="TEXT", help="Text (or CSV rows) to start from.", rich_help_panel=PROMPT)] = None,
    prompt_file: Annotated[Optional[str], typer.Option("--prompt-file", "-f", metavar="PATH", help="Read the prompt from a file, or - for stdin.", rich_help_panel=PROMPT)] = None,
    length: Annotated[int, typer.Option("--length", "-n", metavar="N", help="Symbols to generate.", rich_help_panel=SAMPLING)] = 200,
    temperature: Annotated[float, typer.Option("--temperature", "-T", metavar="T", help="Sampling temperature; 0 = most likely symbol.", rich_help_panel=SAMPLING)] = 0.0,
    seed: Annotated[Optional[int], typer.Option("--seed", "-s", min=0, max=2**64 - 1, metavar="N", help="Seed of the sampling (default: the model's own random stream).", show_default=False, rich_help_panel=SAMPLING)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", min=1, metavar="N", help="Maximum threads.", rich_help_panel=RUN)] = None,
    echo_prompt: Annotated[bool, typer.Option("--echo-prompt", help="Write the prompt before the generated data.", rich_help_panel=PROMPT)] = False,
    top_k: Annotated[int, typer.Option("--top-k", metavar="K", help="Sample only among the K most likely symbols (0 = all).", rich_help_panel=SAMPLING)] = 0,
    top_p: Annotated[float, typer.Option("--top-p", metavar="P", help="Sample only among the most likely symbols whose probabilities add up to P (1 = all).", rich_help_panel=SAMPLING)] = 1.0,
    repetition_penalty: Annotated[float, typer.Option("--repetition-penalty", metavar="R", help="Divide the probability of symbols generated in the last 64 by R (1 = off).", rich_help_panel=SAMPLING)] = 1.0,
    stop: Annotated[Optional[list[str]], typer.Option("--stop", metavar="TEXT", help="End a sample right after TEXT appears (repeatable).", rich_help_panel=SAMPLING)] = None,
    num_samples: Annotated[int, typer.Option("--num-samples", metavar="N", help="Draw N continuations of the same prompt.", rich_help_panel=SAMPLING)] = 1,
    separator: Annotated[str, typer.Option("--separator", metavar="TEXT", help="Written after each sample when --num-samples > 1 (escapes \\n \\t allowed).", rich_help_panel=SAMPLING)] = "\\n---\\n",
) -> None:
    """Generate LENGTH symbols from MODEL after feeding it the prompt; only the data goes to stdout.

    Without a prompt, generation continues from the context saved in the model. CSV
    models forecast the next rows in closed loop.
    """
    check_generation_options(length, temperature, seed)
    controls = Controls(temperature, top_k, top_p, repetition_penalty,
                        stop=tuple(x.encode("utf-8") for x in stop or []))   # OptionError -> exit 2
    if prompt is not None and prompt_file is not None:
        raise UsageError("give either --prompt or --prompt-file, not both")
    check_paths(inputs=[(model, "model"), (prompt_file, "prompt file")])
    apply_threads(threads)
    m = load_model(model)
    out = sys.stdout.buffer
    sep = separator.replace("\\n", "\n").replace("\\t", "\t").encode("utf-8")
    for chunk in generate_symbols(m, _read_prompt(prompt, prompt_file), length, temperature, seed, echo_prompt,
                                  controls, num_samples, sep):
        out.write(chunk)
        out.flush()
    out.flush()
