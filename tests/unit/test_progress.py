"""The progress display draws only on a terminal and never in quiet mode."""

from __future__ import annotations

import io

from probes.progress import progress, wanted


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_not_a_terminal():
    stream = io.StringIO()
    with progress(10, "domains", quiet=False, stream=stream) as bar:
        for i in range(10):
            bar.advance(f"d{i}.example")
    assert stream.getvalue() == ""
    assert not wanted(False, stream)


def test_quiet_mode_draws_nothing_even_on_a_terminal():
    stream = _Tty()
    with progress(10, "domains", quiet=True, stream=stream) as bar:
        bar.advance("x")
    assert stream.getvalue() == ""


def test_a_terminal_gets_a_bar_without_colour_when_no_color_is_set(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = _Tty()
    with progress(3, "domains", quiet=False, stream=stream) as bar:
        for name in ("a.example", "b.example", "c.example"):
            bar.advance(name)
    out = stream.getvalue()
    assert "domains" in out
    assert "\x1b[3" not in out  # no foreground colour codes
