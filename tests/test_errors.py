"""The wording helpers every message shares."""

import socket
import ssl

import pytest

from pipelines.dates import zone_name
from pipelines.errors import UsageError, connection_failure, counted, noun, one_of
from pipelines.opentact.api import record_types


def test_a_count_takes_the_singular_only_for_one():
    assert [counted(n, "slice") for n in (0, 1, 2, 1204)] == ["0 slices", "1 slice", "2 slices", "1,204 slices"]
    assert (counted(1, "more failed slice"), counted(2, "currency", "currencies")) == ("1 more failed slice", "2 currencies")
    assert (noun(1, "column"), noun(3, "column")) == ("column", "columns")


@pytest.mark.parametrize(
    ("refuse", "expected"),
    [
        (lambda: one_of("jsn", ("table", "csv", "json"), "--format"),
         "--format must be one of table, csv, json (got 'jsn'; did you mean 'json'?)"),
        (lambda: one_of("xml", ("table", "csv", "json"), "--format"), "--format must be one of table, csv, json (got 'xml')"),
        (lambda: record_types("cdr,mdrs".split(",")), "record types must be some of cdrs, mdrs; got 'cdr' (did you mean 'cdrs'?)"),
        (lambda: zone_name("Europe/Londn"), "unknown time zone 'Europe/Londn' (did you mean 'Europe/London'?): use "),
        (lambda: zone_name("asia/kolkatta"), "unknown time zone 'asia/kolkatta' (did you mean 'Asia/Kolkata'?): use "),
        (lambda: zone_name("Mars/Olympus"), "unknown time zone 'Mars/Olympus': use "),
    ],
)
def test_a_mistyped_choice_is_answered_with_the_closest_one(refuse, expected):
    with pytest.raises(UsageError) as caught:
        refuse()
    assert str(caught.value).startswith(expected)


def test_a_connection_failure_is_said_in_words_through_a_clients_own_wrappers():
    def wrapped(inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except ssl.SSLError as exc:
                raise ConnectionError("Cannot connect to host 127.0.0.1:9000 ssl:default") from exc
        except ConnectionError as outer:
            return outer

    untrusted = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    untrusted.verify_message = "self-signed certificate"
    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    plain.reason = "WRONG_VERSION_NUMBER"
    assert connection_failure(wrapped(untrusted), "https://x") == (
        "the server's TLS certificate is not trusted (self-signed certificate)"
    )
    assert connection_failure(wrapped(plain), "https://x") == (
        "the server answered plain HTTP, not HTTPS: check the URL's scheme (http://) and port"
    )
    assert connection_failure(ConnectionRefusedError(111, "Connection refused"), "https://x") is None


def test_a_host_that_does_not_resolve_is_said_in_words_through_a_clients_own_wrappers():
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except OSError as exc:
            raise ConnectionError("[Errno -2] Name or service not known") from exc
    except ConnectionError as outer:
        wrapped = outer
    assert connection_failure(wrapped, "https://x") == "host not found: Name or service not known"
    assert connection_failure(socket.gaierror(socket.EAI_NONAME), "https://x") == "host not found: no address"


def test_a_connection_closed_unanswered_is_said_in_words_with_the_scheme_to_check_over_plain_http():
    def wrapped(inner: BaseException) -> Exception:
        try:
            try:
                raise inner
            except Exception as exc:
                raise ConnectionError("") from exc  # httpx's ReadError says nothing of a reset
        except ConnectionError as outer:
            return outer

    reset = wrapped(ConnectionResetError(104, "Connection reset by peer"))
    closed = wrapped(RuntimeError("Server disconnected without sending a response."))
    hint = ", as an HTTPS server does to plain HTTP: if it is one, use https://"
    assert connection_failure(reset, "http://127.0.0.1:8443") == f"the server reset the connection{hint}"
    assert connection_failure(closed, "HTTP://api.example.com/v1") == (
        f"the server closed the connection without an answer{hint}"
    )
    assert connection_failure(reset, "https://api.example.com") == "the server reset the connection"
    # closed mid-answer: the client's own words say so
    mid_answer = RuntimeError("peer closed connection without sending complete message body")
    assert connection_failure(mid_answer, "http://x") is None
