"""Domain exceptions: messages a user can act on; the CLI prints them as one line. Also the wording helpers
every message and summary shares (cut text, a few names, a count with its noun)."""

import difflib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

# Every error stays one short line (within 300 characters with the CLI's "error: "), however long
# its cause: a library's message, which can quote a query, a value or a path whole, is cut at this...
MESSAGE_MAX_CHARS = 240
# ... and a path or value repeated inside a sentence of ours at this.
ECHO_MAX_CHARS = 100


class CdrError(Exception):
    """An expected failure with a message meant for the user.

    ``exit_code`` is what the CLI exits with: 2 for bad input (nothing was done),
    1 for a failure while working.
    """

    exit_code = 1


class UsageError(CdrError):
    """Bad input from the user: nothing was fetched or written."""

    exit_code = 2


# Here rather than in lake.py: the sync lock (sync_lock.py), which lake.py imports, raises it too.
class LakeError(CdrError):
    """A file in the data dir cannot be read as what it should be."""


class ReaderGone(BaseException):
    """Whoever read stdout closed it (`cdr sql ... | head -1`): it has what it wanted, so the command stops
    quietly, as Unix tools do. Not an Exception: no command's own error handling takes it for a failure."""


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """Output a reader may stop reading early without stopping what the command goes on to do: its sending,
    its exit code's verdict or the failure it is telling (an exit 0 there would read as success to a script)."""
    with suppress(ReaderGone):
        yield


def expected_failure(record: logging.LogRecord) -> CdrError | None:
    """A log record -> the expected error it reports (a CdrError in its exc_info, or one whose traceback
    `flows.ExpectedFailureWithoutTraceback` took off), else None."""
    told = getattr(record, "cdr_error", None)
    if isinstance(told, CdrError):
        return told
    if record.exc_info and isinstance(record.exc_info[1], CdrError):
        return record.exc_info[1]
    return None


def bad_value(option: str, why: str) -> UsageError:
    """An option's value that cannot be read as what it takes (its form, a real date, an instant we handle) -> its error.

    The one form of every such message: `bad --start: <why>`, the option named as the user types it. A value
    that reads well but the data cannot serve says so after the option and value (`--month 2025-12 is before ...`).
    """
    return UsageError(f"bad {option}: {why}")


def one_line(exc: BaseException, *, limit: int = MESSAGE_MAX_CHARS, first: bool = False) -> str:
    """An error -> its message on one line, cut at `limit`: every line joined, or only the `first`.

    A caret line (DuckDB's pointer under the query it quotes) is dropped; an empty message
    reads as the error's type.
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and set(line) != {"^"}]
    return clip(" ".join(kept[:1] if first else kept) or type(exc).__name__, limit)


def what_is_wrong(exc: BaseException) -> str:
    """Why a JSON record could not be read -> a short reason (a missing field named as such)."""
    return f"it has no {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else one_line(exc, first=True)


def clip(text: str, limit: int = ECHO_MAX_CHARS) -> str:
    """Text echoed in a message -> at most `limit` characters on one line, an ellipsis marking a cut."""
    text = " ".join(text.splitlines())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def choice(value: str, choices: Sequence[str]) -> str | None:
    """Text given for a fixed choice -> the choice it names, in any case and with spaces around (None: none).

    The one rule for every option, command and setting of fixed choices: `--format CSV` is `csv` as
    `--min-severity WARNING` is `warning`.
    """
    wanted = value.strip().casefold()
    return next((name for name in choices if name.casefold() == wanted), None)


def one_of(value: str, choices: Sequence[str], option: str) -> str:
    """An option's value -> the choice it names (`choice`); UsageError naming the option and its choices."""
    name = choice(value, choices)
    if name is None:
        hint = did_you_mean(value, choices)
        raise UsageError(f"{option} must be one of {', '.join(choices)} (got {clip(repr(value))}{f'; {hint}' if hint else ''})")
    return name


def did_you_mean(value: str, options: Iterable[str], cutoff: float = 0.8) -> str:
    """A value none of `options` names -> "did you mean 'X'?" with the option closest to it (`closest`); ''
    when none is."""
    found = closest(value, options, cutoff)
    return f"did you mean {found!r}?" if found is not None else ""


def closest(value: str, options: Iterable[str], cutoff: float = 0.8) -> str | None:
    """The option closest to `value` in any case, or None when none is close enough for a letter or two mistyped."""
    by_folded = {option.casefold(): option for option in options}
    found = difflib.get_close_matches(value.strip().casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[found[0]] if found else None


def hinted(hint: str) -> str:
    """A hint ('' for none) -> it in brackets after a value: " (did you mean 'json'?)"."""
    return f" ({hint})" if hint else ""


def noun(count: int, singular: str, plural: str | None = None) -> str:
    """A count and a noun -> the noun as that count takes it: `slice` for 1, else `slices` (or `plural`)."""
    return singular if count == 1 else plural or singular + "s"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """A count and a noun -> both as a message says them: `1 slice`, `0 slices`, `1,204 records`."""
    return f"{count:,} {noun(count, singular, plural)}"


# How many names a message lists before it cuts the list short.
FEW = 3


def few(names: Sequence[str]) -> str:
    """Names echoed in a message -> the first three, comma-separated, "..." marking more."""
    return ", ".join(names[:FEW]) + (", ..." if len(names) > FEW else "")


def few_counted(names: Sequence[str], singular: str) -> str:
    """Names a line lists, however many -> `few` of them, and how many in all when it cuts them short:
    `acme, globex` or `a000, a001, a002, ... (150 accounts)`."""
    return few(names) + (f" ({counted(len(names), singular)})" if len(names) > FEW else "")


def named_accounts(names: Sequence[str]) -> str:
    """Accounts a line names -> `account acme`, or `accounts a000, a001, a002, ... (150 accounts)`."""
    return f"{noun(len(names), 'account')} {few_counted(names, 'account')}"


def unusable_host(host: str) -> bool:
    """A URL's host -> whether no connection can be made to it by name: an empty or over-long label
    (`api..opentact.org`), which URL parsers let through and only the IDNA encoding at connect time refuses."""
    try:
        host.encode("idna")
    except UnicodeError:
        return True
    return False


def causes(exc: BaseException) -> list[BaseException]:
    """An error and what it was raised from or while handling, nearest first."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return chain


# OpenSSL's reasons for a handshake whose answer was no TLS at all: a server speaking plain HTTP on the port.
_PLAIN_ANSWER_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"})


def connection_failure(exc: BaseException, url: str) -> str | None:
    """A connection's error and the URL asked -> what went wrong, in words, where the client's own words do not
    say it: a host name that does not resolve, a failed TLS handshake, a connection the server reset; None if
    it is none of these.

    The clients' own words name the resolver's and OpenSSL's internals (`[Errno -2] Name or service not
    known`, `[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)`, which does not say that an
    https:// URL reached a plain-HTTP server), or nothing at all (httpx's `ReadError: ` for a reset, which
    with a connection closed unanswered is how a server speaking TLS meets plain HTTP: an http:// URL to an
    https:// server). Every client (the API's, the object store's, the webhook's) words them so, through
    this. Only the URL's scheme is read (a webhook URL's path may hold a token).
    """
    import socket
    import ssl

    chain = causes(exc)
    if resolving := next((cause for cause in chain if isinstance(cause, socket.gaierror)), None):
        return f"host not found: {resolving.strerror or 'no address'}"
    # getattr: a client's own subclasses of ssl's errors (aiohttp's) lack their fields; ssl's own error is further on.
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError) and getattr(cause, "verify_message", None):
            return f"the server's TLS certificate is not trusted ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in _PLAIN_ANSWER_REASONS:
            return "the server answered plain HTTP, not HTTPS: check the URL's scheme (http://) and port"
    reset = any(isinstance(cause, ConnectionResetError) for cause in chain)
    # httpcore's words for a connection closed before any answer (one closed mid-answer it words otherwise)
    unanswered = any(str(cause).startswith("Server disconnected without sending a response") for cause in chain)
    if not (reset or unanswered):
        return None
    what = "the server reset the connection" if reset else "the server closed the connection without an answer"
    if urlsplit(url).scheme.lower() != "http":
        return what
    # Said as a maybe: a server in trouble (the sandbox's faults) resets plain HTTP too.
    return f"{what}, as an HTTPS server does to plain HTTP: if it is one, use https://"


def shown_url(url: str) -> str:
    """A URL -> what a message may show of it: its scheme, host and port (user info, path and query may hold a
    password or token); one that names no host, with any user info and query cut off."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # an unclosed [IPv6 bracket, a port that is not a number
        host = port = None
    if not host:
        scheme, separator, rest = url.partition("?")[0].rpartition("://")
        return clip(scheme + separator + rest.rpartition("@")[2].partition("/")[0])
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
