"""The round-trip benchmark's pure helpers: container log stamps, Dovecot's LMTP deliveries,
the reply that ends DATA, header values and percentiles."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from roundtrip import (
    after_data_reply,
    header_values,
    lmtp_deliveries,
    parse_log_line,
    parse_stamp,
    percentile,
)

EPOCH_2026 = 1795313817.0  # 2026-11-22T02:16:57Z


def test_stamp_keeps_nanoseconds_and_zone():
    assert parse_stamp("2026-11-22T02:16:57.123456789Z") == pytest.approx(EPOCH_2026 + 0.123456789)
    assert parse_stamp("2026-11-22T03:16:57.5+01:00") == pytest.approx(EPOCH_2026 + 0.5)
    assert parse_stamp("2026-11-22T02:16:57+0000") == pytest.approx(EPOCH_2026)


@pytest.mark.parametrize(
    "text", ["", "Nov 22 02:16:57", "2026-11-22T02:16:57", "2026-13-40T00:00:00Z"]
)
def test_stamp_without_a_valid_rfc3339_time_is_none(text):
    assert parse_stamp(text) is None


def test_k8s_file_line_drops_stream_and_tag():
    line = "2026-11-22T02:16:57.250000000+00:00 stderr F lmtp(19): Info: Connect from 1.2.3.4\n"
    when, text = parse_log_line(line)
    assert when == pytest.approx(EPOCH_2026 + 0.25)
    assert text == "lmtp(19): Info: Connect from 1.2.3.4"


def test_podman_logs_line_keeps_text():
    assert parse_log_line("2026-11-22T02:16:57Z master: Info: up") == (
        EPOCH_2026,
        "master: Info: up",
    )
    assert parse_log_line("no stamp here") is None


def test_lmtp_delivery_pairs_save_with_connect_of_same_process():
    entries = [
        (1.0, "Nov 22 02:16:57 lmtp(19): Info: Connect from 127.1.1.25"),
        (1.1, "Nov 22 02:16:57 lmtp(20): Info: Connect from 127.1.1.26"),
        (
            1.3,
            "Nov 22 02:16:57 lmtp(user@example.test)<20><abc>: Info: msgid=<b@x>: saved mail to"
            " INBOX",
        ),
        (
            1.4,
            "Nov 22 02:16:57 lmtp(user@example.test)<19><def>: Info: msgid=<a@x>: saved mail to"
            " INBOX",
        ),
        (2.0, "Nov 22 02:16:58 lmtp(19): Info: Connect from 127.1.1.99"),
        (
            2.1,
            "Nov 22 02:16:58 lmtp(user@example.test)<19><ghi>: Info: msgid=<a@x>: saved mail to"
            " INBOX",
        ),
    ]
    found = lmtp_deliveries(entries)
    assert set(found) == {"<a@x>", "<b@x>"}
    assert (found["<a@x>"].connect, found["<a@x>"].saved, found["<a@x>"].client) == (
        1.0,
        1.4,
        "127.1.1.25",
    )
    assert (found["<b@x>"].connect, found["<b@x>"].saved) == (1.1, 1.3)


def test_lmtp_save_without_a_connect_line_has_no_connect_time():
    found = lmtp_deliveries([(5.0, "lmtp(u)<7><s>: Info: msgid=<m@x>: saved mail to INBOX")])
    assert found["<m@x>"].connect is None
    assert found["<m@x>"].saved == 5.0


def test_data_reply_is_the_one_after_354():
    replies = [(0.0, 220), (0.1, 250), (0.2, 250), (0.3, 354), (0.5, 250), (0.6, 221)]
    assert after_data_reply(replies) == 0.5


def test_no_354_or_nothing_after_it_gives_none():
    assert after_data_reply([(0.0, 220), (0.1, 550)]) is None
    assert after_data_reply([(0.0, 220), (0.3, 354)]) is None
    assert after_data_reply([]) is None


def test_header_values_unfold_and_stop_at_the_body():
    raw = (
        b"X-Mailprobe-Token: abc\r\nSubject: s\r\nx-mailprobe-token:\r\n  def\r\n\r\n"
        b"X-Mailprobe-Token: body\r\n"
    )
    assert header_values(raw, "X-Mailprobe-Token") == ["abc", "def"]
    assert header_values(raw, "Message-ID") == []


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == pytest.approx(5.5)
    assert percentile(values, 0.9) == pytest.approx(9.1)
    assert percentile([3.0], 0.9) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)
