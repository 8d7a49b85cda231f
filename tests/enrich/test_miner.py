"""Template miner: masking, id stability, generalization, snapshots, bounds and threads."""

from __future__ import annotations

import json
import random
import threading

import pytest

from hub.enrich.logs import miner as miner_module
from hub.enrich.logs.miner import (
    _MASK,
    WILDCARD,
    MinerConfig,
    TemplateMiner,
    _collapse,
    _digit_shape,
    _mask_unscanned,
    _TokenMasker,
)

SAMPLE = [
    "Accepted password for root from 10.0.0.1 port 2201 ssh2",
    "Accepted password for alice from 10.0.0.7 port 40122 ssh2",
    "Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6",
    "Received block blk_7503483334202473044 of size 233217 from /10.250.14.224",
    "Connection closed by 192.168.1.5 [preauth]",
]


def test_masking_groups_variable_tokens() -> None:
    m = TemplateMiner()
    first = m.add("took 35ms to write /var/log/app/x.log at 0x7f3a size=1024")
    again = m.add("took 120ms to write /tmp/a/b.log at 0xdeadbeef size=5")
    assert first.template_id == again.template_id
    assert again.template == "took <*> to write <*> at <*> size=<*>"
    assert first.is_new and not again.is_new


def test_id_stable_when_template_generalized() -> None:
    m = TemplateMiner()
    a = m.add(SAMPLE[0])
    b = m.add(SAMPLE[1])
    assert a.template_id == b.template_id
    assert b.template == "Accepted password for <*> from <*> port <*> ssh2"
    assert b.params == ("alice", "10.0.0.7", "40122")


def test_distinct_templates_and_counts() -> None:
    m = TemplateMiner()
    ids = [m.add(s).template_id for s in SAMPLE]
    assert len(set(ids)) == 3
    assert sorted(t.count for t in m.templates()) == [1, 2, 2]


def test_ids_stable_across_instances() -> None:
    a, b = TemplateMiner(), TemplateMiner()
    assert [a.add(s).template_id for s in SAMPLE] == [b.add(s).template_id for s in SAMPLE]


def test_snapshot_round_trip() -> None:
    m = TemplateMiner()
    for s in SAMPLE:
        m.add(s)
    r = TemplateMiner.restore(m.snapshot())
    assert sorted(r.templates(), key=lambda t: t.template_id) == sorted(
        m.templates(), key=lambda t: t.template_id
    )
    hit = r.add("Connection closed by 10.1.1.1 [preauth]")
    assert not hit.is_new and hit.template_id == m.add("Connection closed by 10.1.1.2 [preauth]").template_id


def test_restore_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        TemplateMiner.restore(b'{"version": 99}')


def test_bounds_and_counters() -> None:
    m = TemplateMiner(MinerConfig(max_templates=2, max_line_length=20))
    m.add("alpha one")
    m.add("beta two three")
    third = m.add("gamma four five six")
    assert len(m.templates()) == 2 and m.counters.templates_evicted == 1
    m.add("x" * 50)
    assert m.counters.truncated_lines == 1 and m.counters.lines == 4
    assert third.template_id in {t.template_id for t in m.templates()}


def test_evicted_id_not_reused() -> None:
    m = TemplateMiner(MinerConfig(max_templates=1))
    first = m.add("alpha one")
    m.add("beta two three")
    assert m.add("alpha one").template_id != first.template_id


def test_concurrent_adds_count_every_line() -> None:
    m = TemplateMiner()

    def work() -> None:
        for i in range(500):
            m.add(f"Accepted password for u{i} from 10.0.0.{i % 250} port {i} ssh2")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.counters.lines == 2000
    assert sum(t.count for t in m.templates()) == 2000


def test_parameter_runs_of_any_length_keep_one_template() -> None:
    m = TemplateMiner()
    one = m.add("ask 10.0.0.1:50010 to delete blk_1 blk_2")
    many = m.add("ask 10.0.0.9:50010 to delete blk_3 blk_4 blk_5 blk_6 blk_7")
    assert one.template_id == many.template_id
    assert many.template == "ask <*> to delete <*>"


def test_quantity_annotations_and_units_do_not_split_a_template() -> None:
    m = TemplateMiner()
    a = m.add("h:80 close, 403 bytes sent, 426 bytes received, lifetime <1 sec")
    b = m.add("h:81 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime 00:02")
    assert a.template_id == b.template_id
    assert b.template == "h:<*> close, <*> bytes sent, <*> bytes received, lifetime <*>"
    assert m.add("h:82 close, 5 bytes sent, 6 bytes received, lifetime 2 min").template_id == a.template_id


def test_all_parameter_template_takes_lines_of_its_shape() -> None:
    m = TemplateMiner()
    ids = {m.add(f"{i} 0x{i * 17:x} 10.0.0.{i}").template_id for i in range(5)}
    assert len(ids) == 1 and m.templates()[0].template == "<*>" and m.templates()[0].count == 5
    assert m.add("other words here").template_id not in ids


def test_one_differing_constant_of_a_short_template_opens_a_new_one() -> None:
    m = TemplateMiner()
    a = m.add("updateClipping isOverlap:false, top=3")
    assert m.add("updateClipping isOverlap:true, top=5").template_id != a.template_id
    assert m.add("updateClipping isOverlap:false, top=7").template_id == a.template_id


def test_a_line_seen_before_gets_the_latest_template_and_is_counted() -> None:
    m = TemplateMiner()
    first = m.add("Accepted password for root from 10.0.0.1 port 22 ssh2")
    m.add("Accepted password for alice from 10.0.0.2 port 23 ssh2")
    again = m.add("Accepted password for root from 10.0.0.3 port 24 ssh2")
    assert again.template_id == first.template_id and not again.is_new
    assert again.template == "Accepted password for <*> from <*> port <*> ssh2"
    assert again.params == ("root", "10.0.0.3", "24")
    assert [t.count for t in m.templates()] == [3]


def test_lines_differing_in_their_second_token_are_different_events() -> None:
    m = TemplateMiner()
    a = m.add("Failed password for invalid user bob from 10.0.0.1 port 22 ssh2")
    assert m.add("Failed none for invalid user eve from 10.0.0.2 port 23 ssh2").template_id != a.template_id
    again = m.add("Failed password for invalid user ann from 10.0.0.3 port 24 ssh2")
    assert again.template_id == a.template_id


def test_restore_of_a_snapshot_keyed_by_first_token_only_still_matches() -> None:
    old = {
        "version": 1,
        "config": {"sim_threshold": 0.5, "max_templates": 100, "max_line_length": 4096},
        "used_ids": ["abc"],
        "templates": [{"id": "abc", "tokens": ["Link", "up", "on", "<*>"], "key": [4, "Link"], "count": 3}],
    }
    m = TemplateMiner.restore(json.dumps(old).encode())
    hit = m.add("Link up on eth7")
    assert hit.template_id == "abc" and not hit.is_new and m.templates()[0].count == 4


def test_a_quoted_string_is_one_parameter_whatever_its_spaces() -> None:
    m = TemplateMiner()
    a = m.add('acquire lock=17, tag="WakeLocks", uid=1000')
    b = m.add('acquire lock=18, tag="Window Manager Lock", uid=1001')
    assert a.template_id == b.template_id and b.template == "acquire lock=<*>, tag=<*>, uid=<*>"


def test_a_flipped_flag_is_another_event() -> None:
    m = TemplateMiner()
    a = m.add("interceptKey keycode=4 interactive=true down true canceled false")
    b = m.add("interceptKey keycode=5 interactive=true down false canceled false")
    c = m.add("interceptKey keycode=6 interactive=true down true canceled false")
    assert b.template_id != a.template_id and c.template_id == a.template_id


def test_a_key_value_keeps_its_brackets_and_its_word_values() -> None:
    m = TemplateMiner()
    a = m.add("destroy Surface(name=com.app/.Main) force=false id[0]=7")
    assert a.template == "destroy Surface(name=<*>) force=false id[<*>]=<*>"


_AUTH = "logname= uid=0 euid=0 tty=ssh ruser="


@pytest.mark.parametrize(
    ("first", "another_event", "same_event"),
    [
        pytest.param(  # a value left empty
            f"auth failure; {_AUTH} rhost=10.0.0.1",
            f"auth failure; {_AUTH} rhost=",
            f"auth failure; {_AUTH} rhost=h.example",
            id="empty-value",
        ),
        pytest.param(
            "The change in focus caused us to need to do a layout begin",
            "The change in focus caused us to need to do a layout end",
            None,
            id="opposite-state",
        ),
        pytest.param(
            "bond0: link status definitely Up for interface 10.0.0.1, 1000 Mbps full duplex",
            "bond0: link status definitely Down for interface 10.0.0.2, 1000 Mbps full duplex",
            None,
            id="opposite-state-capitalized",
        ),
        pytest.param(
            f"PAM 1 more authentication failure; {_AUTH} rhost=10.0.0.1",
            f"PAM 4 more authentication failures; {_AUTH} rhost=10.0.0.1",
            f"PAM 1 more authentication failure; {_AUTH} rhost=10.0.0.1",
            id="plural",
        ),
        pytest.param(
            "session opened for user root by (uid=0)",
            "session opened for user root by LOGIN(uid=0)",
            "session opened for user cyrus by (uid=6)",
            id="constant-glued-on-a-parameter-frame",
        ),
    ],
)
def test_a_differing_word_that_names_another_event_opens_another_template(
    first: str, another_event: str, same_event: str | None
) -> None:
    m = TemplateMiner()
    a = m.add(first)
    assert m.add(another_event).template_id != a.template_id
    if same_event is not None:
        assert m.add(same_event).template_id == a.template_id


def test_another_kind_of_device_is_another_event_but_another_of_one_kind_or_user_is_not() -> None:
    m = TemplateMiner()
    a = m.add("NIFF: node node-1 has a connection on network 10.0.0.0 via interface ee0")
    assert (
        m.add("NIFF: node node-2 has a connection on network 10.1.0.0 via interface alt0").template_id
        != a.template_id
    )
    assert (
        m.add("NIFF: node node-3 has a connection on network 10.2.0.0 via interface ee0").template_id
        == a.template_id
    )
    e = m.add("link eth0 changed state to down after 5 ms")
    assert m.add("link eth3 changed state to down after 7 ms").template_id == e.template_id
    b = m.add("Invalid user test123 from 10.0.0.1")
    assert m.add("Invalid user admin456 from 10.0.0.2").template_id == b.template_id


def test_another_case_or_upper_case_value_is_another_event_but_another_lower_case_value_is_not() -> None:
    m = TemplateMiner()
    a = m.add("disable: < expand ICONS* alerts SYSTEM_INFO* back home recent clock >")
    assert m.add("disable: < expand icons* alerts system_info* back home recent clock >").template_id != (
        a.template_id
    )
    b = m.add("onInterceptTouchEvent MotionEvent { action=ACTION_DOWN, actionButton=0, id[0]=0, flags=0x0 }")
    c = m.add("onInterceptTouchEvent MotionEvent { action=ACTION_UP, actionButton=0, id[0]=0, flags=0x0 }")
    assert c.template_id != b.template_id
    tail = "logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1"
    d = m.add(f"pam_unix(sshd:auth): authentication failure; {tail} user=root")
    assert m.add(f"pam_unix(sshd:auth): authentication failure; {tail} user=git").template_id == d.template_id


TRICKY = [
    "fpr29=0xffffffff ffffffff ffffffff deadbeefcafe",  # letters-only tokens that are hex ids
    'user "John  Smith" logged in after 12 KB/s',  # quote with two spaces, unit with a tail
    "h:82 close, 1190 bytes (1.16 KB) sent, lifetime <1 sec",  # unit words after numbers
    "took 3  ms then 4\tmin, msg 5 minimum",  # unit words not after a single space, unit-like words
    "job " + "x9" * 40 + " done at 10.0.0.1:80 - 10.0.0.2:81",  # a long token, cached
    "sent 5 KB" + "/x9" * 100 + " then 6 sec",  # a unit-led token longer than the cache keeps
    "Failed to renew lease for [c_1] for 161 seconds.  Will retry shortly ...",  # two spaces later on
    "Surface(name=Input) {a=b} x=1) tty=:0 rhost= [k=v1]",  # key=value values: words, brackets, empty
    "sec waited 5 sec sec min, then 2 KB KB) and 7  min",  # chains of unit words, one at the start
]


def _line_scan(line: str) -> str:
    return _collapse(_MASK.sub(WILDCARD, line))


def test_token_by_token_masking_equals_the_line_scan() -> None:
    masker = _TokenMasker()
    for line in TRICKY * 2:  # twice: the second pass reads the token cache
        assert _collapse(masker.mask(line, line.split())).split() == _line_scan(line).split(), line


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("x_http://a/b", "x_<*>"),
        ("(ftp://h/x)", "(<*>"),
        ("5-3", "<*><*>"),
        ("a-5", "a-<*>"),
        ("x12 t761}", "x1<*> t7<*>}"),
        ("~3 <1", "<*> <*>"),
        ("//a/b /c/d", "//a/b <*>"),
        ("x1.2.3.4 (1.2.3.4:80)", "x1.<*>.<*> (<*>)"),
        ("é0x5 0x1f", "é0x5 <*>"),
        ("ab:cd:ef:01:23:45", "<*>"),
        ("deadbeefcafe9 xdeadbeefcafe", "<*> xdeadbeefcafe"),
        ("task_1_m_2 _blk_3", "<*> _blk_<*>"),
        ("k=v1 k=word", "k=<*> k=word"),
    ],
)
def test_mask_looks_behind_each_alternative_first_character(text: str, masked: str) -> None:
    # Pinned from the masks before their look-behinds moved after the first character: ids stay stable.
    assert _MASK.sub(WILDCARD, text) == masked


def test_short_hex_ids_are_masked_but_not_words_or_names() -> None:
    masked = _MASK.sub(
        WILDCARD, "Skipping AppWindowToken{df0798e ActivityRecord{3b04890 f39182} ee0 abcdef scip0"
    )
    assert masked == "Skipping AppWindowToken{<*> ActivityRecord{<*> <*>} ee0 abcdef scip0"


def test_lines_of_one_digit_shape_mask_alike() -> None:
    lines = [
        "read 0x1f at 10.0.0.1:80 in 35ms",
        "read 1x1f at 10.0.0.1:80 in 35ms",  # "1x1f" is no hex literal: its digits stay
        "read 0x7f at 92.4.5.3:81 in 99ms",
        "link alt0 up",
        "link alt7 up",
    ] + TRICKY
    for a in lines:
        for b in lines:
            if _digit_shape(a) == _digit_shape(b) and not any(ch.isdigit() for ch in _line_scan(a)):
                assert _line_scan(a) == _line_scan(b), (a, b)
    assert _digit_shape(lines[0]) != _digit_shape(lines[1])
    assert _digit_shape(lines[0]) == _digit_shape(lines[2]) and _digit_shape(lines[3]) == _digit_shape(
        lines[4]
    )


def test_a_line_of_a_known_shape_keeps_the_digits_its_mask_keeps() -> None:
    m = TemplateMiner()
    a = m.add("link u0 up on port 5")
    b = m.add("link u7 up on port 6")
    assert b.template == "link <*> up on port <*>" and b.template_id == a.template_id
    assert b.params == ("u7", "6")


def test_lines_of_one_shape_keep_apart_by_the_digits_their_mask_keeps() -> None:
    m = TemplateMiner()
    a, b = m.add("alt0 up 5"), m.add("alt1 up 6")
    assert a.template_id != b.template_id
    assert m.add("alt1 up 7").template_id == b.template_id
    assert m.add("alt0 up 8").template_id == a.template_id
    assert m.add("alt0 up 9").params == ("9",)


def test_token_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(miner_module, "TOKEN_CACHE_LIMIT", 10)
    masker = _TokenMasker()
    for i in range(100):
        masker.mask(f"n{i} id{i}", [f"n{i}", f"id{i}"])
        assert len(masker._cache) <= 10
    assert masker.mask("n99 id99", ["n99", "id99"]) == _MASK.sub(WILDCARD, "n99 id99")


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("www.google.com:443", "www.google.com:<*>"),
        ("r1---sn-i3beln.googlevideo.com:443", None),  # a digit in the name: scanned
        ("double-hummer", "double-hummer"),
        ("failed:", "failed:"),
        ("cafebabe.com:80", None),  # eight hex letters: a hex id
        ("ab:cd:ef:ab:cd:ef", None),  # five colons: a MAC
        ("http://host", None),
        ("rhost=", None),
        ("host:\u0663", None),  # a non-ASCII digit: the masks see a digit
    ],
)
def test_tokens_the_masks_cannot_start_on_skip_the_scan(token: str, masked: str | None) -> None:
    assert _mask_unscanned(token) == masked
    if masked is not None:
        assert _MASK.sub(WILDCARD, token) == masked


def test_a_token_masked_without_the_scan_is_masked_as_the_scan_does() -> None:
    rng = random.Random(6)
    alphabet = 'abcdefABCFxyz_-.:=/"09<+~%\u00e9\u0663'
    answered = 0
    for _ in range(20_000):
        token = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        masked = _mask_unscanned(token)
        if masked is not None:
            answered += 1
            assert masked == _MASK.sub(WILDCARD, token), token
    assert answered > 2_000  # the fast path is taken, not only declined
