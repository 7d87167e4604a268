"""Request/reply: closing a responder stops its ``serve`` loop cleanly."""

from __future__ import annotations

import threading

import mqlog


def _serve_and_record(responder) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            responder.serve()
        except BaseException as error:  # the thread's failure is the test's
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_close_stops_serve_without_an_error(tmp_path):
    with mqlog.open(tmp_path, durability="none") as log:
        log.create_topic("quotes")
        responder = log.responder("quotes", lambda request: request.value + b"!")
        thread, errors = _serve_and_record(responder)
        assert log.request("quotes", b"AAPL", timeout=10).value == b"AAPL!"
        responder.close()
        assert not thread.is_alive()  # close returned after serve did
        thread.join()
    assert errors == []


def test_closing_the_log_stops_serve_without_an_error(tmp_path):
    log = mqlog.open(tmp_path, durability="none")
    log.create_topic("quotes")
    responder = log.responder("quotes", lambda request: b"ok")
    thread, errors = _serve_and_record(responder)
    assert log.request("quotes", b"x", timeout=10).value == b"ok"
    log.close()
    thread.join()
    assert errors == []


def test_a_handler_may_close_its_own_responder(tmp_path):
    with mqlog.open(tmp_path, durability="none") as log:
        log.create_topic("quotes")
        holder: list = []

        def handler(request):
            holder[0].close()
            return b"bye"

        holder.append(log.responder("quotes", handler))
        thread, errors = _serve_and_record(holder[0])
        assert log.request("quotes", b"stop", timeout=10).value == b"bye"
        thread.join()
    assert errors == []
