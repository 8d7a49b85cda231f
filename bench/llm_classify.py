"""Severity accuracy of the LLM template classifier against Loghub's `Level` column, next to the keyword
baseline in the same run. Needs an OpenAI-compatible server (`--base-url`); exits 2 when none answers.

    python bench/llm_classify.py --data ../shared/data/loghub --base-url http://127.0.0.1:8000 --model m
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path

from hub.enrich.llm.classify import TemplateClassifier, keyword_class
from hub.enrich.llm.client import ChatClient, LlmError
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.redact import Redactor

# Loghub's levels on the classifier's scale.
LEVELS = {
    "V": "debug", "D": "debug", "DEBUG": "debug", "I": "info", "INFO": "info", "W": "warning",
    "WARN": "warning", "WARNING": "warning", "E": "error", "ERROR": "error", "SEVERE": "critical",
    "FATAL": "critical", "F": "critical",
}  # fmt: skip


def labelled(data: Path) -> list[tuple[str, str]]:
    """(template, expected severity), one per distinct template of each system with a Level column."""
    out: dict[str, str] = {}
    for path in sorted(data.glob("*/*_2k.log_structured.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                level = LEVELS.get(row.get("Level", ""))
                if level is not None:
                    out.setdefault(row["EventTemplate"], level)
    return sorted(out.items())


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/loghub"))
    ap.add_argument("--base-url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    items = labelled(args.data)[: args.limit or None]
    baseline = sum(keyword_class(t).severity == want for t, want in items) / max(1, len(items))
    print(f"templates: {len(items)}  keyword baseline accuracy: {baseline:.3f}")
    client = ChatClient(LlmConfig(base_url=args.base_url, model=args.model, timeout_s=60, max_tokens=64))
    try:
        try:
            await client.complete("Answer with {}", "ping")
        except LlmError as exc:
            print(f"no OpenAI-compatible server at {args.base_url}: {exc}", file=sys.stderr)
            return 2
        classifier = TemplateClassifier(client, Redactor.build())
        got = [await classifier.classify_template(t) for t, _ in items]
    finally:
        await client.aclose()
    llm = sum(g.severity == want for g, (_, want) in zip(got, items, strict=True)) / max(1, len(items))
    answered = sum(g.source == "llm" for g in got)
    print(f"llm accuracy: {llm:.3f}  ({answered}/{len(items)} answered by the model)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
