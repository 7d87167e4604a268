"""``stopping_on``: signals set a flag between steps; a second Ctrl-C still interrupts."""

from __future__ import annotations

import signal
import threading

import pytest

from mqlog.cli._signals import stopping_on


def test_a_first_sigint_sets_stop_and_a_second_raises_then_the_old_handler_is_back():
    before = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    with pytest.raises(KeyboardInterrupt), stopping_on(stop, (signal.SIGINT, signal.SIGTERM)):
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        signal.raise_signal(signal.SIGTERM)  # sets it again: no exception
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_nothing_changes():
    stop = threading.Event()
    seen = []

    def body() -> None:
        with stopping_on(stop, (signal.SIGINT,)):
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [before] and not stop.is_set()
