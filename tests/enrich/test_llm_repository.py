"""Stored explanations and template classes on SQLite and PostgreSQL: what is saved is what is read back,
a second save replaces the first, and askers saving from several threads at once each land."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from hub.enrich.llm import repository
from hub.enrich.llm.classify import TemplateClass
from hub.enrich.llm.schema import Enrichment
from hub.enrich.llm.service import Provenance

pytestmark = pytest.mark.integration


def _answer(n: int, fallback: bool = False) -> tuple[Enrichment, Provenance]:
    e = Enrichment(
        summary=f"Liaison perdue n°{n} — <b>core</b>",
        probable_cause="optique HS",
        suggested_actions=("reseat", "swap the SFP"),
        confidence=0.25 * (n % 4),
        fallback=fallback,
    )
    return e, Provenance("smollm2-135m", f"{n:064x}", 1_800_000_000_000 + n, 40 + n, 100 + n, fallback)


def test_an_explanation_is_read_back_as_saved_and_replaced_by_the_next(db: sa.Engine) -> None:
    assert repository.load(db, "i1") is None
    repository.save(db, "i1", *_answer(1))
    got = repository.load(db, "i1")
    assert got is not None and (got.enrichment, got.provenance) == _answer(1)
    repository.save(db, "i1", *_answer(2, fallback=True))
    again = repository.load(db, "i1")
    assert again is not None and (again.enrichment, again.provenance) == _answer(2, fallback=True)
    assert again.to_json()["provenance"] == {
        "model": "smollm2-135m",
        "prompt_sha256": f"{2:064x}",
        "created_ms": 1_800_000_000_002,
        "latency_ms": 42,
        "tokens": 102,
    }


def test_askers_saving_from_many_threads_at_once_each_land(db: sa.Engine) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: repository.save(db, f"i{n % 20}", *_answer(n)), range(60)))
    for k in range(20):
        got = repository.load(db, f"i{k}")
        assert got is not None
        n = int(got.provenance.prompt_sha256, 16)  # whichever save came last, whole: never a mix of two
        assert n % 20 == k and (got.enrichment, got.provenance) == _answer(n)


def test_template_classes_are_upserted_by_template_id(db: sa.Engine) -> None:
    repository.save_classes(db, {"t1": TemplateClass("info", "application", "keywords")}, 1)
    repository.save_classes(
        db,
        {"t1": TemplateClass("error", "storage", "llm"), "t2": TemplateClass("warning", "network", "llm")},
        2,
    )
    assert repository.classes(db, ["t1", "t2", "t3"]) == {
        "t1": TemplateClass("error", "storage", "llm"),
        "t2": TemplateClass("warning", "network", "llm"),
    }
    assert repository.classes(db, []) == {}
