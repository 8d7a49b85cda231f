"""The dashboard's rendering of an incident's explanation (hub/dashboard/static/enrichment.js), run in node
without a browser: model text becomes text nodes only (an element whose innerHTML is touched fails), the
fallback and the provenance are shown, and an incident without an explanation says so."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "hub/dashboard/static/enrichment.js"
HOSTILE = '<img src=x onerror="globalThis.pwned=1">'

# A document whose elements record textContent and children and refuse innerHTML.
RUNNER = r"""
const vm = require("vm"), fs = require("fs");
class El {
  constructor(tag) { this.tag = tag; this.className = ""; this.children = []; this._text = ""; }
  set textContent(t) { this._text = String(t); } get textContent() { return this._text; }
  set innerHTML(_) { throw new Error("innerHTML used"); }
  get innerHTML() { throw new Error("innerHTML used"); }
  appendChild(c) { this.children.push(c); }
  plain() {
    const children = this.children.map((c) => c.plain());
    return { tag: this.tag, cls: this.className, text: this._text, children };
  }
}
const ctx = { document: { createElement: (t) => new El(t) } };
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), ctx);  // node -e: argv[1] is the first argument
ctx.inputs = JSON.parse(process.argv[2]);
const out = vm.runInContext("inputs.map((e) => buildNodes(document, enrichmentView(e)))", ctx);
const nodes = out.map((els) => els.map((el) => el.plain()));
process.stdout.write(JSON.stringify({ nodes, pwned: !!ctx.pwned }));
"""


def render(*enrichments: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, "-e", RUNNER, str(SCRIPT), json.dumps(list(enrichments))],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    out = json.loads(done.stdout)
    assert out["pwned"] is False
    return list(out["nodes"])


def enrichment(**over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "summary": f"Uplink down {HOSTILE}",
        "probable_cause": "<b>optic</b> failed",
        "suggested_actions": ["reseat the optic", HOSTILE],
        "confidence": 0.7,
        "fallback": False,
        "provenance": {
            "model": "smollm2-135m",
            "prompt_sha256": "ab" * 32,
            "created_ms": 1_800_000_000_000,
            "latency_ms": 1234,
            "tokens": 100,
        },
    }
    return {**e, **over}


def test_model_text_is_rendered_as_text_with_its_actions_and_provenance() -> None:
    (nodes,) = render(enrichment())
    texts = [(n["tag"], n["cls"], n["text"]) for n in nodes]
    assert ("p", "enrich-summary", f"Uplink down {HOSTILE}") in texts
    assert ("p", "enrich-cause", "<b>optic</b> failed") in texts
    (actions,) = [n for n in nodes if n["tag"] == "ol"]
    assert [li["text"] for li in actions["children"]] == ["reseat the optic", HOSTILE]
    provenance = nodes[-1]["text"]
    assert provenance.startswith("model smollm2-135m · 2027-01-15T08:00:00.000Z · 1234 ms · 100 tokens")
    assert "confidence 70%" in provenance and "prompt abababababab" in provenance


def test_a_fallback_says_so_and_a_missing_explanation_is_a_hint() -> None:
    fallback, missing = render(
        enrichment(fallback=True, probable_cause="", suggested_actions=[], confidence=0.0), None
    )
    assert fallback[0]["text"].startswith("Summary (built from the alerts")
    assert [n["tag"] for n in fallback] == ["h3", "p", "p"]  # no empty cause or actions
    assert fallback[-1]["text"].startswith("fallback (model smollm2-135m answered invalidly)")
    assert missing == [{"tag": "p", "cls": "hint", "text": missing[0]["text"], "children": []}]
    assert "No explanation yet" in missing[0]["text"]
