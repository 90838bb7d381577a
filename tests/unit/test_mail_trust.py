"""probes.mail.trust on hand-built messages: which Authentication-Results headers are the
receiver's own (trusted), another hop's (foreign), forged (written by the sender, or below the
receiver's own Received line) or unparsable; and what the receiver saw of the client."""

from __future__ import annotations

import pytest

from probes.mail import trust

MX = "mx.example.test"

# The lab's real Exim formats (captured from a round trip).
EXIM_RECEIVED = (
    "from client-a.example.test ([127.0.0.10] helo=x)\r\n"
    "\tby mx.example.test with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\r\n"
    "\t(Exim 4.96)\r\n"
    "\t(envelope-from <user@example.test>)\r\n"
    "\tid 1xUxAF-00000Y-0Q\r\n"
    "\tfor user@example.test;\r\n"
    "\tSun, 22 Nov 2026 02:18:47 +0000"
)
EXIM_AR = (
    "mx.example.test;\r\n"
    "\tiprev=pass (client-a.example.test) smtp.remote-ip=127.0.0.10;\r\n"
    "\tdkim=pass header.d=example.test header.i=@example.test header.s=mail "
    "header.a=rsa-sha256;\r\n"
    "\tspf=pass (sender SPF authorized) smtp.mailfrom=user@example.test"
)
LMTP_RECEIVED = (
    "from mx.example.test ([127.0.0.25])\r\n\tby mailbox.example.test with LMTP\r\n"
    "\tid CDx0EAdRAmsTAAAAg+zDdQ\r\n\t(envelope-from <user@example.test>)\r\n"
    "\tfor <user@example.test>; Sun, 22 Nov 2026 02:18:47 +0000"
)
OUTBOUND_RECEIVED = (
    "from client-a.example.test ([127.0.0.10] helo=mailprobe.invalid)\r\n"
    "\tby outbound.example.test with esmtpsa (TLS1.3) (Exim 4.96)\r\n"
    "\t(envelope-from <user@example.test>) id 1xUxAE-00000S-1w for user@example.test;\r\n"
    "\tSun, 22 Nov 2026 02:18:46 +0000"
)
FORGED_AR = "mx.example.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=example.test"

SENT_FIELDS = [
    ("From", "user@example.test"),
    ("To", "user@example.test"),
    ("Subject", "mailprobe test abc"),
    ("Message-ID", "<abc@example.test>"),
    ("X-Mailprobe-Token", "abc"),
]


def message(*fields: tuple[str, str], body: str = "body\r\n") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return (head + "\r\n" + body).encode()


def delivered(*top: tuple[str, str], sent: tuple[tuple[str, str], ...] = ()) -> bytes:
    """What the mailbox holds: Return-Path, Dovecot's LMTP Received, then `top` (what the
    MX added, top first), then the message as sent."""
    return message(
        ("Return-Path", "<user@example.test>"),
        ("Delivered-To", "user@example.test"),
        ("Received", LMTP_RECEIVED),
        *top,
        *sent,
    )


SENT = message(*SENT_FIELDS)
RECEIVED = delivered(
    ("Authentication-Results", EXIM_AR), ("Received", EXIM_RECEIVED), sent=tuple(SENT_FIELDS)
)


def ids(headers) -> list[str]:
    return [a.parsed.authserv_id if a.parsed else a.value.split(";")[0] for a in headers]


# ----- judge: trusted, foreign, forged, unparsed ---------------------------------------------


def test_the_receivers_own_header_above_its_received_line_is_trusted():
    j = trust.judge(RECEIVED, SENT, MX)
    assert [a.value for a in j.trusted] == [" ".join(EXIM_AR.split())]
    assert j.trusted[0].position == 3
    assert j.receiver_received == 4
    assert (j.forged, j.foreign, j.unparsed) == ((), (), ())
    methods = [(r.method, r.result) for r in j.trusted[0].parsed.results]
    assert methods == [("iprev", "pass"), ("dkim", "pass"), ("spf", "pass")]


@pytest.mark.parametrize("receiver_id", ["MX.Example.TEST", "mx.example.test."])
def test_authserv_id_matches_case_insensitively_and_without_the_root_dot(receiver_id):
    j = trust.judge(RECEIVED, SENT, receiver_id)
    assert len(j.trusted) == 1
    assert j.receiver_received == 4


def test_another_hops_header_is_foreign_and_never_trusted():
    sent_fields = (("Authentication-Results", "outbound.example.test; auth=pass"), *SENT_FIELDS)
    sent = message(*sent_fields)
    raw = delivered(
        ("Authentication-Results", "gateway.example.net; spf=fail smtp.mailfrom=x@example.test"),
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        sent=sent_fields,
    )
    j = trust.judge(raw, sent, MX)
    assert ids(j.foreign) == ["gateway.example.net", "outbound.example.test"]
    assert ids(j.trusted) == [MX]
    assert j.forged == ()


def test_a_header_claiming_the_receiver_below_its_received_line_is_forged():
    # An earlier hop (here the outbound relay) wrote results in the receiver's name.
    raw = delivered(
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        ("Authentication-Results", FORGED_AR),
        ("Received", OUTBOUND_RECEIVED),
        sent=tuple(SENT_FIELDS),
    )
    j = trust.judge(raw, SENT, MX)
    assert ids(j.trusted) == [MX]
    assert [(a.value, why) for a, why in j.forged] == [
        (FORGED_AR, "it sits below the receiver's own Received line")
    ]
    assert j.forged[0][0].position == 5


def test_a_header_claiming_the_receiver_that_came_with_the_sent_message_is_forged():
    sent_fields = (("Authentication-Results", FORGED_AR), *SENT_FIELDS)
    sent = message(*sent_fields)
    raw = delivered(
        ("Authentication-Results", EXIM_AR), ("Received", EXIM_RECEIVED), sent=sent_fields
    )
    j = trust.judge(raw, sent, MX)
    assert ids(j.trusted) == [MX]
    assert [(a.value, why) for a, why in j.forged] == [
        (FORGED_AR, "it was already in the message as sent")
    ]


def test_without_the_receivers_received_line_only_the_sent_rule_applies():
    sent_fields = (("Authentication-Results", FORGED_AR), *SENT_FIELDS)
    sent = message(*sent_fields)
    raw = message(("Authentication-Results", EXIM_AR), *sent_fields)
    j = trust.judge(raw, sent, MX)
    assert j.receiver_received is None
    assert ids(j.trusted) == [MX]
    assert [why for _, why in j.forged] == ["it was already in the message as sent"]


def test_the_sent_header_is_recognised_whatever_its_folding():
    sent = message(("Authentication-Results", FORGED_AR), *SENT_FIELDS)
    refolded = FORGED_AR.replace("; ", ";\r\n\t  ")
    raw = message(
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        ("Authentication-Results", refolded),
        *SENT_FIELDS,
    )
    j = trust.judge(raw, sent, MX)
    assert [why for _, why in j.forged] == ["it was already in the message as sent"]


def test_an_unparsable_header_claiming_the_receiver_is_unparsed_not_trusted():
    bad = "mx.example.test; dkim"  # a method without a result
    raw = delivered(
        ("Authentication-Results", bad), ("Received", EXIM_RECEIVED), sent=tuple(SENT_FIELDS)
    )
    j = trust.judge(raw, SENT, MX)
    assert j.trusted == ()
    assert [(a.value, a.parsed) for a in j.unparsed] == [(bad, None)]
    assert j.unparsed[0].error


def test_an_unparsable_header_of_another_hop_is_ignored():
    raw = delivered(
        ("Authentication-Results", "gateway.example.net; dkim"),
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        sent=tuple(SENT_FIELDS),
    )
    j = trust.judge(raw, SENT, MX)
    assert (ids(j.trusted), j.foreign, j.unparsed, j.forged) == ([MX], (), (), ())


def test_an_unparsable_header_claiming_the_receiver_is_forged_by_the_same_rules():
    sent_fields = (("Authentication-Results", "(x) mx.example.test; spf"), *SENT_FIELDS)
    sent = message(*sent_fields)
    raw = delivered(
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        ("Authentication-Results", "mx.example.test; dkim=="),
        sent=sent_fields,
    )
    j = trust.judge(raw, sent, MX)
    assert ids(j.trusted) == [MX]
    assert sorted(why for _, why in j.forged) == [
        "it sits below the receiver's own Received line",
        "it was already in the message as sent",
    ]
    assert all(a.parsed is None for a, _ in j.forged)
    assert j.unparsed == ()


def test_no_header_from_the_receiver_leaves_nothing_trusted():
    raw = delivered(("Received", EXIM_RECEIVED), sent=tuple(SENT_FIELDS))
    j = trust.judge(raw, SENT, MX)
    assert (j.trusted, j.forged, j.foreign, j.unparsed) == ((), (), (), ())
    assert j.receiver_received == 3


def test_results_between_two_passes_through_the_receiver_are_its_own():
    # A content filter re-injecting the message: the receiver's Received line of the second
    # pass is on top; its results were added during the first pass, below that line.
    reinjected = "from localhost ([127.0.0.1]) by mx.example.test with esmtp id 2"
    raw = delivered(
        ("Received", reinjected),
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED),
        sent=tuple(SENT_FIELDS),
    )
    j = trust.judge(raw, SENT, MX)
    assert ids(j.trusted) == [MX]
    assert j.forged == ()
    assert j.receiver_received == 5
    assert trust.client_seen(raw, MX, SENT) == trust.ClientSeen("127.0.0.10", "x")


def test_a_received_line_the_sender_wrote_is_never_the_receivers():
    fake = "from trusted.example.test ([192.0.2.1] helo=trusted) by mx.example.test with esmtp"
    sent_fields = (
        ("Authentication-Results", FORGED_AR),
        ("Received", fake),
        *SENT_FIELDS,
    )
    sent = message(*sent_fields)
    raw = delivered(
        ("Authentication-Results", EXIM_AR), ("Received", EXIM_RECEIVED), sent=sent_fields
    )
    j = trust.judge(raw, sent, MX)
    assert j.receiver_received == 4
    assert ids(j.trusted) == [MX]
    assert [why for _, why in j.forged] == ["it was already in the message as sent"]
    assert trust.client_seen(raw, MX, sent) == trust.ClientSeen("127.0.0.10", "x")


def test_by_inside_a_comment_does_not_name_the_receiver():
    value = "from evil (comment by mx.example.test [192.0.2.9]) by relay.example.net with smtp"
    raw = message(("Authentication-Results", FORGED_AR), ("Received", value), *SENT_FIELDS)
    assert trust.judge(raw, SENT, MX).receiver_received is None
    assert trust.client_seen(raw, MX) == trust.ClientSeen(None, None)


def test_non_utf8_bytes_and_garbage_lines_do_not_break_judging():
    raw = (
        b"From nobody Sun Nov 22 02:18:47 2026\r\n"
        + f"Authentication-Results: {EXIM_AR}\r\n".encode()
        + f"Received: {EXIM_RECEIVED}\r\n".encode()
        + b"Subject: caf\xe9 \xff\xfe\r\n"
        + b"no colon on this line\r\n"
        + b"From: user@example.test\r\n\r\nbody\r\n"
    )
    j = trust.judge(raw, SENT, MX)
    assert ids(j.trusted) == [MX]


def test_an_utf8_authserv_id_is_compared_as_text():
    raw = message(("Authentication-Results", "mx.bücher.test; spf=pass"), *SENT_FIELDS)
    assert ids(trust.judge(raw, SENT, "mx.bücher.test").trusted) == ["mx.bücher.test"]


def test_empty_and_headerless_input_give_an_empty_judgement():
    for raw in (b"", b"\r\n\r\nbody", b"\x00\xff"):
        j = trust.judge(raw, SENT, MX)
        assert (j.trusted, j.forged, j.foreign, j.unparsed, j.receiver_received) == (
            (),
            (),
            (),
            (),
            None,
        )


# ----- client_seen ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "seen"),
    [
        # Exim: host name, then ([IP] helo=HELO) when the HELO differs from the host name.
        (
            "from client-a.example.test ([127.0.0.10] helo=x) by mx.example.test with esmtps "
            "(TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from <a@example.test>) "
            "id 1 for a@example.test; Sun, 22 Nov 2026 02:18:47 +0000",
            ("127.0.0.10", "x"),
        ),
        (EXIM_RECEIVED, ("127.0.0.10", "x")),
        # Exim, HELO equal to the host name: the name after `from` is the HELO.
        (
            "from client-a.example.test ([127.0.0.10]) by mx.example.test",
            ("127.0.0.10", "client-a.example.test"),
        ),
        # Exim without a host name.
        (
            "from [127.0.0.11] (helo=client-b) by mx.example.test with esmtp",
            ("127.0.0.11", "client-b"),
        ),
        # Exim without a host name, HELO an address literal: never taken for the client.
        (
            "from [127.0.0.11] (helo=[192.0.2.66]) by mx.example.test with esmtp",
            ("127.0.0.11", "[192.0.2.66]"),
        ),
        # Postfix: from HELO (RDNS [IP]); a HELO literal outside the comment is not the client.
        (
            "from mail.example.net (mail.example.net [192.0.2.5]) by mx.example.test (Postfix) "
            "with ESMTPS id 4Xy",
            ("192.0.2.5", "mail.example.net"),
        ),
        (
            "from [192.0.2.66] (unknown [192.0.2.5]) by mx.example.test (Postfix) with ESMTP",
            ("192.0.2.5", "[192.0.2.66]"),
        ),
        (
            "from mail.example.net (mail.example.net [IPv6:2001:db8::25]) by mx.example.test",
            ("2001:db8::25", "mail.example.net"),
        ),
        # qmail style
        (
            "from unknown (HELO relay.example.net) ([192.0.2.7]) by mx.example.test",
            ("192.0.2.7", "relay.example.net"),
        ),
    ],
)
def test_client_seen_reads_the_receivers_received_line(received, seen):
    raw = message(("Received", received), *SENT_FIELDS)
    assert trust.client_seen(raw, MX) == trust.ClientSeen(*seen)


def test_client_seen_uses_the_receivers_line_not_the_final_delivery_or_earlier_hops():
    raw = delivered(
        ("Authentication-Results", EXIM_AR),
        ("Received", EXIM_RECEIVED.replace("127.0.0.10", "127.0.0.26").replace("helo=x", "")),
        ("Received", OUTBOUND_RECEIVED),
        sent=tuple(SENT_FIELDS),
    )
    assert trust.client_seen(raw, MX, SENT) == trust.ClientSeen(
        "127.0.0.26", "client-a.example.test"
    )
    assert trust.client_seen(raw, "outbound.example.test", SENT) == trust.ClientSeen(
        "127.0.0.10", "mailprobe.invalid"
    )


def test_client_seen_without_the_receivers_line_knows_nothing():
    assert trust.client_seen(SENT, MX) == trust.ClientSeen(None, None)
    raw = message(("Received", "from x (y [not-an-ip]) by mx.example.test"), *SENT_FIELDS)
    assert trust.client_seen(raw, MX) == trust.ClientSeen(None, "x")


# ----- return_path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("<user@example.test>", "user@example.test"), ("<>", ""), (" < a@b.test > ", "a@b.test")],
)
def test_return_path_is_the_envelope_sender_without_brackets(value, expected):
    assert trust.return_path(message(("Return-Path", value), *SENT_FIELDS)) == expected


def test_no_return_path_is_none():
    assert trust.return_path(SENT) is None


# ----- helpers -------------------------------------------------------------------------------


def test_blank_comments_keeps_positions_and_handles_nesting_and_escapes():
    text = r"a (b (c) \) d) e (unclosed"
    blanked = trust.blank_comments(text)
    assert len(blanked) == len(text)
    assert blanked.split() == ["a", "e"]


def test_by_clause_names_the_host_and_where_the_clause_starts():
    value = "from a ([192.0.2.1] helo=by) by mx.example.test with esmtp"
    host, start = trust.by_clause(value)
    assert host == MX
    assert value[start:].lstrip().startswith("by mx.")
    assert trust.by_clause("by mx.example.test (Postfix, from userid 0)")[0] == MX
    assert trust.by_clause("from a with esmtp") == (None, len("from a with esmtp"))


def test_a_huge_header_section_is_read_in_bounded_time():
    many = tuple(("Authentication-Results", f"h{i}.example; spf=pass") for i in range(5000))
    raw = message(("Authentication-Results", EXIM_AR), *many, *SENT_FIELDS)
    j = trust.judge(raw, SENT, MX)
    assert ids(j.trusted) == [MX]
    assert len(j.foreign) < 1000  # header_fields stops at MAX_FIELDS
