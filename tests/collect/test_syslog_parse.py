"""Syslog parsing: the RFC examples give their fields; arbitrary text never raises."""

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect.syslog.parse import parse


def test_rfc5424_example_with_structured_data() -> None:
    m = parse(
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application"] An application event'
    )
    assert (m.facility, m.severity, m.rfc) == (20, 5, "5424")
    assert (m.host, m.app, m.procid, m.msgid) == ("mymachine.example.com", "evntslog", "", "ID47")
    assert m.structured_data.startswith("[exampleSDID@32473") and m.message == "An application event"


def test_rfc5424_nil_structured_data_and_bom() -> None:
    m = parse("<34>1 2003-10-11T22:14:15.003Z host su - - - \ufeff'su root' failed")
    assert (m.facility, m.severity, m.app, m.structured_data) == (4, 2, "su", "")
    assert m.message == "'su root' failed"


def test_rfc3164_with_pid() -> None:
    m = parse("<13>Oct 11 22:14:15 switch1 sshd[4121]: Accepted publickey for admin")
    assert (m.rfc, m.host, m.app, m.procid) == ("3164", "switch1", "sshd", "4121")
    assert m.message == "Accepted publickey for admin"


def test_no_grammar_keeps_the_text_with_default_priority() -> None:
    m = parse("just some text")
    assert (m.facility, m.severity, m.rfc, m.message) == (1, 5, "", "just some text")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_never_raises(text: str) -> None:
    m = parse(text)
    assert 0 <= m.severity <= 7 and 0 <= m.facility <= 23
