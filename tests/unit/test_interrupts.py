"""probes.interrupts: the CLI's handler (raise once, then only note) and deferred sections
(signals held until the section ends), with real signals sent to this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from probes import interrupts
from probes.interrupts import Interrupted


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own SIGINT handler, as in a terminal: a shell without job control starts a
    background job with SIGINT ignored, and these tests compare with the usual handlers."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _pump() -> None:
    """Give the main thread a few bytecodes, where Python runs its signal handlers."""
    for _ in range(50):
        time.sleep(0.001)


def test_handled_raises_interrupted_until_the_command_unwinds():
    with interrupts.handled():
        with pytest.raises(Interrupted) as excinfo:
            signal.raise_signal(signal.SIGTERM)
            _pump()
        assert excinfo.value.exit_status == 143
        with pytest.raises(Interrupted):  # the first raise may have been dropped: raise again
            signal.raise_signal(signal.SIGINT)
            _pump()
        interrupts.unwind()
        signal.raise_signal(signal.SIGINT)  # unwinding: noted, not raised
        _pump()
        assert interrupts.received() == signal.SIGTERM  # the first one gives the exit status
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_exit_status_is_130():
    assert Interrupted(signal.SIGINT).exit_status == 130
    assert interrupts.exit_status_of(KeyboardInterrupt()) == 130


def test_after_finish_a_signal_changes_nothing():
    with interrupts.handled():
        interrupts.finish()
        signal.raise_signal(signal.SIGINT)
        _pump()


def test_deferred_holds_the_signal_until_the_section_ends():
    done = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        signal.raise_signal(signal.SIGINT)
        _pump()
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C: still held
        _pump()
        done.append("the whole section ran")
    assert done == ["the whole section ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_sections_deliver_at_the_outermost_end():
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
            _pump()
        steps.append("after the inner section")
    assert steps == ["after the inner section"]


def test_deferred_inside_handled_delivers_interrupted():
    with interrupts.handled():
        with pytest.raises(Interrupted) as excinfo, interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)
            _pump()
        assert excinfo.value.signum == signal.SIGTERM


def test_a_signal_that_reaches_a_worker_thread_is_held_too():
    # The kernel may hand a process signal to any thread; Python raises in the main thread.
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        ready, sent = threading.Event(), threading.Event()

        def worker() -> None:
            ready.set()
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            sent.set()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert sent.is_set()
        _pump()


def test_deferred_in_a_worker_thread_only_runs_the_section():
    ran = []

    def worker() -> None:
        with interrupts.deferred():
            ran.append(interrupts.holding())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert ran == [False]  # no handler was swapped from a thread that cannot


def test_held_sigterm_with_the_default_action_still_terminates_after_the_section():
    code = (
        "import signal, sys, time\n"
        "from probes import interrupts\n"
        "with interrupts.deferred():\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "    time.sleep(0.05)\n"
        "    print('section done', flush=True)\n"
        "print('not reached', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert proc.stdout == "section done\n"


def test_cli_main_exits_143_on_sigterm_and_says_nothing_was_left(monkeypatch, capsys):
    from probes import cli, registry

    def interrupted_listing():
        os.kill(os.getpid(), signal.SIGTERM)
        _pump()
        return {}

    monkeypatch.setattr(registry, "load_probes", interrupted_listing)
    assert cli.main(["probes"]) == 143
    assert "interrupted; everything started was stopped" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_cli_main_notices_an_interrupt_python_dropped(monkeypatch, capsys):
    from probes import cli, registry

    class Dropping:
        def __del__(self):  # Python prints, then drops, what a __del__ raises
            signal.raise_signal(signal.SIGINT)
            _pump()

    def listing_that_drops_the_interrupt():
        Dropping()
        return {}

    monkeypatch.setattr(registry, "load_probes", listing_that_drops_the_interrupt)
    assert cli.main(["probes"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; everything started was stopped" in err
    assert "Traceback" not in err  # Python's "Exception ignored" note is not shown for it


def test_cli_main_names_what_was_left_instead_of_claiming_all_was_stopped(monkeypatch, capsys):
    from probes import cli, registry
    from probes.lab import lab as lab_module

    monkeypatch.setattr(lab_module, "started_since", lambda mark: ["a lab"])
    monkeypatch.setattr(lab_module, "stop_labs", lambda labs: None)
    monkeypatch.setattr(
        lab_module,
        "leftover_report",
        lambda labs: "these were left behind: container mailprobe-127-9-9-mx",
    )

    def interrupted_listing():
        signal.raise_signal(signal.SIGINT)
        _pump()
        return {}

    monkeypatch.setattr(registry, "load_probes", interrupted_listing)
    assert cli.main(["probes"]) == 130
    err = capsys.readouterr().err
    assert "everything started was stopped" not in err
    assert "left behind: container mailprobe-127-9-9-mx" in err


def test_sigterm_unwinds_only_replaces_the_default_action():
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    interrupts.sigterm_unwinds()
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
            _pump()
    finally:
        interrupts.sigterm_restore()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # someone else's choice stays
    try:
        interrupts.sigterm_unwinds()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
