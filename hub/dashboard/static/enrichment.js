// The incident view's LLM explanation: `enrichmentView` turns the API's `enrichment` into plain data
// (tag, class, text) with no DOM, and `buildNodes` makes elements of it with textContent only, so model
// text (which may carry markup, or be made to) is never parsed as HTML. Tested in node without a browser.
"use strict";

function enrichmentView(e) {
  if (!e) return [["p", "hint", "No explanation yet: it appears here when the model answers."]];
  const out = [
    ["h3", "", e.fallback ? "Summary (built from the alerts: the model gave no valid answer)" : "Summary"],
    ["p", "enrich-summary", e.summary],
  ];
  if (e.probable_cause) out.push(["h3", "", "Probable cause"], ["p", "enrich-cause", e.probable_cause]);
  if (e.suggested_actions.length) out.push(["h3", "", "Suggested actions"], ["ol", "enrich-actions", e.suggested_actions]);
  const p = e.provenance;
  const source = e.fallback ? `fallback (model ${p.model} answered invalidly)` : `model ${p.model}`;
  out.push(["p", "provenance", `${source} · ${new Date(p.created_ms).toISOString()} · ${p.latency_ms} ms · `
    + `${p.tokens} tokens · confidence ${Math.round(e.confidence * 100)}% · prompt ${p.prompt_sha256.slice(0, 12)}`]);
  return out;
}

function buildNodes(doc, view) {
  return view.map(([tag, cls, text]) => {
    const el = doc.createElement(tag);
    if (cls) el.className = cls;
    if (Array.isArray(text)) {
      for (const t of text) { const li = doc.createElement("li"); li.textContent = t; el.appendChild(li); }
    } else {
      el.textContent = text;
    }
    return el;
  });
}
