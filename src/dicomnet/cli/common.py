"""What every ``dicomnet`` tool shares: network flags, logging, TLS, errors, exit codes, progress.

Theory of operation
-------------------
Each tool builds an :class:`argparse.ArgumentParser` with :func:`tool_parser`, which adds the
flags DCMTK and pynetdicom users already know: ``-aet`` (our AE title), ``-aec`` (the called AE
title, SCU tools only), ``-pdu``/``--max-pdu`` (the Maximum Length we announce, PS3.8 section
D.1), ``-ta``/``-td``/``-tn`` (ACSE/ARTIM, DIMSE and network timeouts), ``-v``/``-d``/``-q``
(verbosity) and the ``--tls*`` options. The tool's own work runs inside :func:`run`, which turns
every failure into one line on stderr and an :class:`ExitCode`:

* a refused or unreachable connection -> ``CONNECTION``;
* an A-ASSOCIATE-RJ -> ``REJECTED`` with its result/source/reason spelled out (PS3.8 Table 9-21);
* an A-ABORT or a protocol error -> ``ABORTED``; a timeout -> ``TIMEOUT``;
* a failure status from the peer -> ``FAILURE`` (raised by the tool as :class:`ToolError`).

:class:`Progress` draws a one-line progress bar (count, bytes, rate) only when its stream is a
terminal; it redraws from the caller's updates (at most ten times a second), never from a timer.

Nothing here imports pydicom or the network stack at module import time: ``dicomnet echoscu``
pays only for what it uses.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, NoReturn, TextIO, TypeAlias

from dicomnet import __version__
from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.dimse.status import category, describe
from dicomnet.errors import (
    AssociationRejectedError,
    DicomNetError,
    NegotiationError,
    ProtocolError,
    TimeoutError_,
)
from dicomnet.negotiated import describe_rejection
from dicomnet.transport.base import TransportError

if TYPE_CHECKING:
    import ssl

    from pydicom.dataset import Dataset

    from dicomnet.ae import AE, EventHandlers
    from dicomnet.association import Association
    from dicomnet.events import Event
    from dicomnet.server import Server

__all__ = [
    "ExitCode",
    "Progress",
    "ToolError",
    "ae_title_arg",
    "associate",
    "client_ssl_context",
    "configure_ae",
    "describe_rejection",
    "format_status",
    "ignore_store",
    "parse_destination",
    "run",
    "server_ssl_context",
    "setup_logging",
    "status_category",
    "tool_parser",
]

LOG = logging.getLogger("dicomnet.cli")

#: A response as the tools get it: the response primitive (C-ECHO, C-STORE), the status
#: Dataset (C-FIND, C-GET, C-MOVE), or None when none came (the association was lost).
Response: TypeAlias = "DIMSEPrimitive | Dataset | None"


class ExitCode(IntEnum):
    """Process exit status of every tool."""

    OK = 0
    FAILURE = 1  # the peer answered with a failure (or cancel) status, or files failed
    USAGE = 2  # bad command line (argparse uses 2 as well)
    CONNECTION = 3  # connection refused / unreachable / TLS handshake failure
    REJECTED = 4  # A-ASSOCIATE-RJ, or no presentation context accepted
    ABORTED = 5  # A-ABORT or protocol error during the association
    TIMEOUT = 6  # ACSE, DIMSE or network timeout
    INTERRUPTED = 130  # Ctrl-C


class ToolError(Exception):
    """A failure the tool reports as one line and an exit code."""

    def __init__(self, reason: str, code: ExitCode = ExitCode.FAILURE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def fail(reason: str, code: ExitCode = ExitCode.FAILURE) -> NoReturn:
    raise ToolError(reason, code)


# --- argument parsing --------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _max_pdu(text: str) -> int:
    value = int(text)
    # PS3.8 section D.1: 0 = no limit; DCMTK refuses below 4096 and so do we.
    if value != 0 and not 4096 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("must be 0 (unlimited) or between 4096 and 4294967295")
    return value


def ae_title_arg(text: str) -> str:
    """An argparse type: an AE title (PS3.5 6.2 AE: 1-16 characters, no backslash or control
    characters; surrounding spaces are padding)."""
    title = text.strip()
    if not title or len(title) > 16 or "\\" in title or not title.isprintable():
        raise argparse.ArgumentTypeError("an AE title is 1 to 16 printable characters, no '\\'")
    return title


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0..65535")
    return value


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal width up front: argparse builds a formatter for
    every ``add_argument`` and would import shutil (and its compression modules) each start
    just to ask for it."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """$COLUMNS, else the terminal's width, else 80 (what shutil.get_terminal_size does)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def tool_parser(
    prog: str,
    description: str,
    *,
    scu: bool = True,
    default_aet: str | None = None,
    prefix_chars: str = "-",
) -> argparse.ArgumentParser:
    """A parser with the shared network, verbosity and TLS flags already added
    (``prefix_chars="-+"`` for tools with DCMTK's ``+x?`` style options)."""
    p = argparse.ArgumentParser(
        prog=f"dicomnet {prog}",
        description=description,
        formatter_class=_HelpFormatter,
        prefix_chars=prefix_chars,
    )
    net = p.add_argument_group("network")
    net.add_argument(
        "-aet",
        "--calling-aet" if scu else "--aetitle",
        dest="aet",
        type=ae_title_arg,
        default=default_aet or prog.upper(),
        help="our AE title (default: %(default)s)",
    )
    if scu:
        net.add_argument(
            "-aec",
            "--called-aet",
            dest="aec",
            type=ae_title_arg,
            default="ANY-SCP",
            help="the peer's AE title (default: %(default)s)",
        )
    net.add_argument(
        "-pdu",
        "--max-pdu",
        dest="max_pdu",
        type=_max_pdu,
        default=None,
        help="maximum P-DATA-TF length we receive (0 = unlimited; default: the library's)",
    )
    net.add_argument("-ta", "--acse-timeout", type=_positive_float, default=None, metavar="S")
    net.add_argument("-td", "--dimse-timeout", type=_positive_float, default=None, metavar="S")
    net.add_argument("-tn", "--network-timeout", type=_positive_float, default=None, metavar="S")
    out = p.add_argument_group("output")
    verbosity = out.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="progress messages")
    verbosity.add_argument("-d", "--debug", action="store_true", help="debug messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors only")
    # pynetdicom's apps spell the level out; given with -v/-d/-q, the level wins
    out.add_argument(
        "-ll", "--log-level", type=str.lower, choices=sorted(LOG_LEVELS), default=None,
        metavar="LEVEL", help="log level: critical, error, warn, info or debug",
    )  # fmt: skip
    out.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )  # fmt: skip
    tls = p.add_argument_group("TLS")
    tls.add_argument("--tls", action="store_true", help="use TLS")
    tls.add_argument("--tls-cert", metavar="PEM", help="our certificate (PEM)")
    tls.add_argument("--tls-key", metavar="PEM", help="our private key (PEM)")
    tls.add_argument("--tls-ca", metavar="PEM", help="CA certificates that verify the peer")
    if scu:
        tls.add_argument(
            "--tls-no-verify", action="store_true", help="do not verify the server certificate"
        )
    else:
        tls.add_argument(
            "--tls-require-client-cert",
            action="store_true",
            help="refuse clients without a certificate signed by --tls-ca",
        )
    return p


#: Longest log message written (characters): whatever a peer sends, a line stays bounded.
MAX_LOG_MESSAGE = 2048


class _BoundedFormatter(logging.Formatter):
    """A formatter whose messages are cut at :data:`MAX_LOG_MESSAGE` characters, with a
    marker saying how much was cut (client values are clipped at the source too; this is the
    backstop for any that are not)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if len(text) > MAX_LOG_MESSAGE:
            text = f"{text[:MAX_LOG_MESSAGE]}...[+{len(text) - MAX_LOG_MESSAGE}]"
        return text


#: ``-ll``/``--log-level`` values (pynetdicom's apps' names) and their logging levels.
LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def setup_logging(args: argparse.Namespace) -> None:
    """-ll LEVEL, else -d: DEBUG, -v: INFO, -q: ERROR, default WARNING; one line per record on
    stderr, each message at most :data:`MAX_LOG_MESSAGE` characters."""
    level = logging.WARNING
    if getattr(args, "log_level", None):
        level = LOG_LEVELS[args.log_level]
    elif args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO
    elif args.quiet:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_BoundedFormatter("%(levelname).1s: %(message)s"))
    root = logging.getLogger("dicomnet")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def client_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS client context the ``--tls*`` flags describe, or None without ``--tls``."""
    if not args.tls:
        return None
    import ssl  # lazy: only with --tls; start-up without TLS does not pay for ssl (~10 ms)

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.tls_ca)
    if args.tls_no_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if args.tls_cert:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return ctx


def server_ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS server context the ``--tls*`` flags describe, or None without ``--tls``."""
    if not args.tls:
        return None
    if not args.tls_cert:
        fail("--tls needs --tls-cert (and --tls-key) on a server", ExitCode.USAGE)
    import ssl  # lazy: only with --tls (see client_ssl_context)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    if args.tls_ca:
        ctx.load_verify_locations(args.tls_ca)
        # a CA to verify clients with: ask for their certificate (its subject identifies the
        # peer to the access rules); verified when given, required with the flag below
        ctx.verify_mode = ssl.CERT_OPTIONAL
    # (a client tool's parser has no such flag: movescu --store-port serves with it unset)
    if getattr(args, "tls_require_client_cert", False):
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def ignore_store(event: Event) -> int:
    """EVT_C_STORE handler of ``--ignore`` (DCMTK's and pynetdicom's): the data set was
    received, nothing is kept, the sub-operation is answered Success (PS3.4 B.2.3)."""
    if event.request is not None:
        uid = event.request.AffectedSOPInstanceUID
        LOG.info("C-STORE %s: received, not stored (--ignore)", uid)
    return 0x0000


def parse_destination(text: str) -> tuple[str, str, int]:
    """``AET=HOST:PORT`` -> (AET, HOST, PORT); raises argparse errors for bad input."""
    try:
        aet, addr = text.split("=", 1)
        host, port_text = addr.rsplit(":", 1)
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected AET=HOST:PORT") from None
    aet = ae_title_arg(aet)
    host = host.strip("[]")
    if not host or not 0 < port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected AET=HOST:PORT")
    return aet, host, port


# --- the network stack -------------------------------------------------------------------------


def configure_ae(ae: AE, args: argparse.Namespace) -> AE:
    """Apply -pdu and the timeouts to an AE (only those given on the command line)."""
    if args.max_pdu is not None:
        ae.maximum_pdu_size = args.max_pdu
    if args.acse_timeout is not None:
        ae.acse_timeout = args.acse_timeout
    if args.dimse_timeout is not None:
        ae.dimse_timeout = args.dimse_timeout
    if args.network_timeout is not None:
        ae.network_timeout = args.network_timeout
        ae.connection_timeout = args.network_timeout
    return ae


def associate(
    ae: AE,
    args: argparse.Namespace,
    host: str,
    port: int,
    *,
    ext_neg: Sequence[object] | None = None,
    evt_handlers: EventHandlers | None = None,
    max_operations_invoked: int | None = None,
) -> Association:
    """Open an association or raise :class:`ToolError` with the one-line reason
    (``ext_neg``, ``evt_handlers``, ``max_operations_invoked``: as for ``AE.associate``)."""
    LOG.info("requesting association with %s at %s:%d", args.aec, host, port)
    assoc = ae.associate(
        host, port, ae_title=args.aec, max_pdu=args.max_pdu, ext_neg=ext_neg,
        ssl_context=client_ssl_context(args), evt_handlers=evt_handlers,
        max_operations_invoked=max_operations_invoked,
    )  # fmt: skip
    if not assoc.is_established:
        where = f"{host}:{port}"
        if assoc.rejected_contexts and not assoc.accepted_contexts:
            fail(f"{where} accepted none of the proposed presentation contexts",
                 ExitCode.REJECTED)  # fmt: skip
        if assoc.is_rejected:
            text = describe_rejection(
                int(assoc.result or 0), int(assoc.result_source or 0), int(assoc.result_reason or 0)
            )
            fail(f"association rejected by {where}: {text}", ExitCode.REJECTED)
        error = assoc.error
        reason = assoc.failure_reason or (str(error) if error else "")
        code = _error_code(error) if error is not None else ExitCode.ABORTED
        fail(f"cannot associate with {where}: {reason or 'association failed'}", code)
    LOG.info("association accepted (%d contexts)", len(assoc.accepted_contexts))
    return assoc


def _error_code(error: BaseException) -> ExitCode:
    """The exit code for the exception that kept an association from being established."""
    if isinstance(error, NegotiationError):
        return ExitCode.REJECTED
    if isinstance(error, TimeoutError_ | TimeoutError) or isinstance(
        error.__cause__, TimeoutError
    ):
        return ExitCode.TIMEOUT
    if isinstance(error, TransportError):  # refused, unreachable, TLS handshake failure
        return ExitCode.CONNECTION
    if isinstance(error, ProtocolError):
        return ExitCode.ABORTED
    if isinstance(error, OSError):  # refused, unreachable, TLS handshake (ssl.SSLError)
        return ExitCode.CONNECTION
    return ExitCode.ABORTED


# --- statuses ----------------------------------------------------------------------------------


def status_category(code: int) -> str:
    """PS3.7 Annex C: the category of a status code ("Success", "Pending", "Cancel",
    "Warning" or "Failure")."""
    return category(code).value


def format_status(code: int, service: str | None = None) -> str:
    """'0xA700 (Failure: Refused: out of resources)': the meaning from the status registry
    (PS3.7 Annex C, PS3.4 per ``service`` such as "C-STORE") when it knows one."""
    cat = status_category(code)
    meaning = ""
    try:
        text = describe(code, service)
        _prefix, sep, rest = text.partition(": ")
        meaning = rest if sep and rest != cat else ""
    except Exception:  # the registry only adds words; never fail a report over it
        meaning = ""
    return f"0x{code:04X} ({cat}{': ' + meaning if meaning else ''})"


def describe_response(rsp: Response, service: str | None = None) -> str:
    """The status of a response with its Error Comment (0000,0902) when present."""
    code = status_of(rsp)
    if code < 0:
        return "no response (association lost)"
    comment = _error_comment(rsp)
    text = format_status(code, service)
    return f"{text}: {comment}" if comment else text


def status_of(rsp: Response) -> int:
    """The Status of a response (or -1 when the response is missing)."""
    if rsp is None:
        return -1
    code = rsp.Status if isinstance(rsp, DIMSEPrimitive) else rsp.get("Status")
    return -1 if code is None else int(code)


def _error_comment(rsp: Response) -> object:
    """The Error Comment of a response primitive (None when its service has none, or it is
    not set) or of a status Dataset (None when absent)."""
    if rsp is None:
        return None
    if isinstance(rsp, DIMSEPrimitive):
        return rsp.params().get("ErrorComment")
    return rsp.get("ErrorComment")


# --- running a tool ----------------------------------------------------------------------------


def run(body: Callable[[], int | ExitCode]) -> int:
    """Run a tool body, mapping every failure to one stderr line and an exit code."""
    try:
        return int(body())
    except ToolError as exc:
        _report(exc.reason)
        return int(exc.code)
    except AssociationRejectedError as exc:
        _report(f"association rejected: {describe_rejection(exc.result, exc.source, exc.reason)}")
        return int(ExitCode.REJECTED)
    except NegotiationError as exc:
        _report(f"association negotiation failed: {exc}")
        return int(ExitCode.REJECTED)
    except TimeoutError_ as exc:
        _report(f"timed out: {exc}")
        return int(ExitCode.TIMEOUT)
    except ProtocolError as exc:
        _report(f"association aborted: {exc}")
        return int(ExitCode.ABORTED)
    except TransportError as exc:
        _report(str(exc) or "connection lost")
        return int(ExitCode.CONNECTION)
    except DicomNetError as exc:
        _report(str(exc) or type(exc).__name__)
        return int(ExitCode.FAILURE)
    except ConnectionRefusedError:
        _report("connection refused")
        return int(ExitCode.CONNECTION)
    except TimeoutError as exc:
        _report(f"timed out: {exc or 'no answer'}")
        return int(ExitCode.TIMEOUT)
    except OSError as exc:
        ssl_mod = sys.modules.get("ssl")  # an SSLError implies ssl was imported
        if ssl_mod is not None and isinstance(exc, ssl_mod.SSLError):
            _report(f"TLS failure: {exc.reason or exc}")
            return int(ExitCode.CONNECTION)
        _report(f"network error: {exc.strerror or exc}")
        return int(ExitCode.CONNECTION)
    except KeyboardInterrupt:
        _report("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug or an unreadable file: still one line (traceback with -d)
        LOG.debug("unexpected error", exc_info=exc)
        _report(f"{type(exc).__name__}: {exc}")
        return int(ExitCode.FAILURE)


def _report(reason: str) -> None:
    line = " ".join(str(reason).split())  # exactly one line
    print(f"error: {line}", file=sys.stderr)


# --- progress ----------------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


class Progress:
    """A one-line progress bar on a terminal (count, bytes, rate); silent otherwise."""

    __slots__ = ("_bytes", "_count", "_last", "_start", "enabled", "stream", "total", "total_bytes")

    def __init__(
        self,
        total: int,
        total_bytes: int,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:  # (no standard error at all, sys.stderr None: not a terminal)
            enabled = self.stream is not None and self.stream.isatty()
        self.enabled = enabled
        self.total = total
        self.total_bytes = total_bytes
        self._count = 0
        self._bytes = 0
        self._start = time.monotonic()
        self._last = 0.0

    def advance(self, nbytes: int) -> None:
        """One more object done (successfully or not), of ``nbytes`` bytes."""
        self._count += 1
        self._bytes += nbytes
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or self._count == self.total:
            self._last = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = max((time.monotonic() if now is None else now) - self._start, 1e-6)
        width = 24
        frac = self._count / self.total if self.total else 1.0
        filled = int(width * frac)
        bar = "#" * filled + "-" * (width - filled)
        return (
            f"[{bar}] {self._count}/{self.total} "
            f"{human_bytes(self._bytes)}/{human_bytes(self.total_bytes)} "
            f"{human_bytes(self._bytes / elapsed)}/s"
        )

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# --- servers -----------------------------------------------------------------------------------


def serve_until_signal(
    ae: AE,
    address: tuple[str, int],
    handlers: EventHandlers,
    ssl_context: ssl.SSLContext | None,
    banner: Callable[[tuple[str, int]], str],
    *,
    quiet: bool = False,
    sock: socket.socket | None = None,
) -> int:
    """Start a server, print ``banner(bound address)``, serve until SIGINT/SIGTERM, shut down.
    ``sock``: an already bound listening socket to serve on instead of binding ``address``.

    SIGINT and SIGTERM are blocked before the server's threads start (they inherit the mask),
    and the main thread waits for them with ``sigwait``: no polling, and shutdown runs in the
    main thread, outside any signal handler.
    """
    import signal  # lazy: only servers wait for signals; a client tool never needs them

    stop = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        server: Server = ae.start_server(
            address, block=False, evt_handlers=handlers, ssl_context=ssl_context, sock=sock
        )
        try:
            if not quiet:
                print(banner(server.address), flush=True)
            sig = signal.sigwait(stop)
            LOG.info("%s: shutting down", signal.Signals(sig).name)
        finally:
            server.shutdown()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return ExitCode.OK
