"""The archive's audit trail: who did what, when, from where, with what result.

Theory of operation
-------------------
:class:`AuditTrail` is a :class:`~dicomnet.monitor.Monitor`: the server hands it one record per
association (accepted, rejected, released, aborted) and per served operation. Each becomes one
JSON object on one line of the audit log (append-only; flushed per line, so a crash loses at
most the line being written): the time (UTC, ISO 8601), the peer's address and port, calling
and called AE titles, the TLS client identity, the operation, SOP class, study and instance
UIDs, counts, status and duration. Every client-supplied value is clipped
(:func:`dicomnet.monitor.clip`): an audit line is never longer than a few KB.

Optionally the same events go to an audit record repository as DICOM Audit Trail Messages
(PS3.15 A.5: RFC 3881 XML with the DICOM event codes of PS3.16 CID 400/401) in RFC 5424 syslog
frames (PRI 85 = facility 10 security/authorization, severity 5 notice; MSGID
"DICOM+RFC3881"), over UDP (PS3.15 A.7, RFC 5426: one datagram per message), TCP or TLS
(PS3.15 A.6, RFC 5425: octet-counted frames). Sending never blocks the server: messages are
queued for one sender thread; a TCP/TLS connection is made lazily, a failed send is logged and
dropped, and a full queue drops (and counts) new messages.

Events sent as DICOM audit messages: Application Activity (start, stop), DICOM Instances
Transferred (C-STORE received, C-GET/C-MOVE sent), Query (C-FIND), Security Alert (an
association or a request refused by the access rules).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import logging
import os
import queue
import socket
import ssl
import threading
import time
from typing import IO, TypeAlias
from xml.sax.saxutils import quoteattr

from dicomnet.dimse.status import Status, category
from dicomnet.monitor import AssociationRecord, Monitor, OperationRecord, clip

__all__ = ["AuditTrail", "SyslogSender"]

LOG = logging.getLogger("dicomnet.archive.audit")

_DCM = 'csd-code="{code}" codeSystemName="DCM" originalText="{text}"'


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="milliseconds")


def _category(status: int | None) -> str:
    """"none", or the status category (PS3.7 Annex C) in lower case: "success", "pending",
    "cancel", "warning" or "failure"."""
    if status is None:
        return "none"
    return category(status).value.lower()


#: One audit line: JSON values (text, numbers, null).
Line: TypeAlias = dict[str, str | int | float | None]


class SyslogSender:
    """RFC 5424 syslog frames to ``udp://host:port``, ``tcp://host:port`` or
    ``tls://host:port`` (see the module docstring).

    :meth:`send` only queues the message (at most :attr:`QUEUE` of them; beyond that they are
    dropped and counted): one sender thread, blocked on the queue when idle, writes them, so
    a slow or unreachable repository never holds up the server."""

    QUEUE = 1000

    def __init__(self, url: str, ssl_context: ssl.SSLContext | None = None,
                 app_name: str = "dicomnet") -> None:  # fmt: skip
        scheme, _, rest = url.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("udp", "tcp", "tls") or not host or not port.isdigit():
            raise ValueError(f"audit syslog target {url!r}: expected udp|tcp|tls://HOST:PORT")
        self.scheme, self.host, self.port = scheme, host.strip("[]"), int(port)
        self.ssl_context = ssl_context
        self.app_name = app_name
        self.hostname = socket.gethostname() or "-"
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(self.QUEUE)
        self._thread = threading.Thread(target=self._run, name="dicomnet-audit", daemon=True)
        self._thread.start()

    def frame(self, message: str, severity: int = 5) -> bytes:
        pri = 10 * 8 + severity  # facility 10: security/authorization messages
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        header = f"<{pri}>1 {now} {self.hostname} {self.app_name} {os.getpid()} DICOM+RFC3881 -"
        return header.encode() + b" \xef\xbb\xbf" + message.encode("utf-8")

    def send(self, message: str, severity: int = 5) -> None:
        """Queue one message (never blocks)."""
        try:
            self._queue.put_nowait(self.frame(message, severity))
        except queue.Full:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                LOG.warning("audit repository %s://%s:%d too slow: %d message(s) dropped",
                            self.scheme, self.host, self.port, self.dropped)  # fmt: skip

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                break
            self._write(data)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _write(self, data: bytes) -> None:
        try:
            if self.scheme == "udp":
                with socket.socket(_family(self.host), socket.SOCK_DGRAM) as s:
                    s.sendto(data, (self.host, self.port))
                return
            if self._sock is None:
                sock = socket.create_connection((self.host, self.port), timeout=5)
                if self.scheme == "tls":
                    ctx = self.ssl_context or ssl.create_default_context()
                    sock = ctx.wrap_socket(sock, server_hostname=self.host)
                self._sock = sock
            self._sock.sendall(f"{len(data)} ".encode() + data)  # RFC 5425 octet counting
        except OSError as exc:
            LOG.warning("audit message not sent to %s://%s:%d: %s", self.scheme, self.host,
                        self.port, exc)  # fmt: skip
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for up to ``timeout`` seconds), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class AuditTrail(Monitor):
    """JSON-lines audit log (and optional DICOM audit messages); see the module docstring."""

    def __init__(self, path: str | None = None, *, stream: IO[str] | None = None,
                 syslog: SyslogSender | None = None, ae_title: str = "DICOMNET") -> None:  # fmt: skip
        self._own = stream is None and path is not None
        self._file: IO[str] | None = stream
        if self._own:
            assert path is not None
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.syslog = syslog
        self.ae_title = ae_title
        self._lock = threading.Lock()

    # -- lines -------------------------------------------------------------------------------------

    def write(self, record: Line) -> None:
        if self._file is None:
            return
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")

    def _peer(self, a: AssociationRecord) -> Line:
        return {
            "peer": clip(a.address, 64), "port": a.port,
            "calling_ae": clip(a.calling_ae, 16), "called_ae": clip(a.called_ae, 16),
            "tls_identity": clip(a.tls_subject, 256) if a.tls_subject else None,
        }  # fmt: skip

    def application(self, started: bool) -> None:
        """The archive started or stopped (PS3.15 A.5.3.1 Application Activity)."""
        self.write({"time": _iso(_now()), "type": "application",
                    "event": "start" if started else "stop", "ae": self.ae_title})  # fmt: skip
        if self.syslog is not None:
            self.syslog.send(self._xml_application(started))

    def association_started(self, record: AssociationRecord) -> None:
        if record.outcome != "rejected":
            return  # an accepted one is written when it ends, with its duration
        line = {"time": _iso(record.started), "type": "association", "outcome": "rejected",
                **self._peer(record), "rejection": "/".join(map(str, record.rejection or ()))}
        self.write(line)
        if self.syslog is not None:
            self.syslog.send(self._xml_security(record, "association rejected"), 4)

    def association_ended(self, record: AssociationRecord) -> None:
        if record.outcome == "rejected":
            return
        ended = record.ended or _now()
        self.write({"time": _iso(record.started), "type": "association",
                    "outcome": record.outcome, **self._peer(record),
                    "duration_ms": round((ended - record.started) * 1000, 1)})  # fmt: skip

    def operation_finished(self, record: OperationRecord) -> None:
        a = record.association
        status = record.status
        line: Line = {
            "time": _iso(record.started), "type": "operation", "operation": record.operation,
            **self._peer(a), "message_id": record.message_id,
            "sop_class": clip(record.sop_class, 64) if record.sop_class else None,
            "sop_instance": clip(record.sop_instance, 64) if record.sop_instance else None,
            "study": clip(record.study, 64) if record.study else None,
            "status": None if status is None else f"0x{status:04X}",
            "result": _category(status),
            "duration_ms": round(record.duration * 1000, 1),
        }  # fmt: skip
        if record.comment:
            line["comment"] = clip(record.comment, 64)
        if record.operation == "C-FIND":
            line["matches"] = record.matches
        if record.operation in ("C-GET", "C-MOVE"):
            line.update(completed=record.completed, failed=record.failed, warning=record.warning)
        if record.operation == "C-STORE":
            line["bytes"] = record.bytes
        self.write(line)
        if self.syslog is not None:
            xml = self._xml_operation(record)
            if xml is not None:
                self.syslog.send(xml, 5 if _category(status) != "failure" else 4)

    # -- DICOM audit messages (PS3.15 A.5) ----------------------------------------------------

    def _source(self) -> str:
        return f"<AuditSourceIdentification AuditSourceID={quoteattr(self.ae_title)}/>"

    def _participant(self, a: AssociationRecord, requestor: bool, role: str) -> str:
        code, text = {"source": ("110153", "Source Role ID"),
                      "destination": ("110152", "Destination Role ID")}[role]  # fmt: skip
        user = quoteattr(clip(a.calling_ae, 16) if requestor else self.ae_title)
        ip = quoteattr(clip(a.address, 64)) if requestor else '"127.0.0.1"'
        return (f"<ActiveParticipant UserID={user} UserIsRequestor=\"{str(requestor).lower()}\" "
                f"NetworkAccessPointID={ip} NetworkAccessPointTypeCode=\"2\">"
                f"<RoleIDCode {_DCM.format(code=code, text=text)}/></ActiveParticipant>")  # fmt: skip

    def _event(self, code: str, text: str, action: str, outcome: int, when: float,
               type_code: tuple[str, str] | None = None) -> str:  # fmt: skip
        inner = f"<EventID {_DCM.format(code=code, text=text)}/>"
        if type_code is not None:
            inner += f"<EventTypeCode {_DCM.format(code=type_code[0], text=type_code[1])}/>"
        return (f"<EventIdentification EventActionCode=\"{action}\" "
                f"EventDateTime=\"{_iso(when)}\" EventOutcomeIndicator=\"{outcome}\">{inner}"
                "</EventIdentification>")  # fmt: skip

    def _xml_application(self, started: bool) -> str:
        type_code = ("110120", "Application Start") if started else ("110121", "Application Stop")
        return (f"<AuditMessage>{self._event('110100', 'Application Activity', 'E', 0, _now(), type_code)}"
                f"<ActiveParticipant UserID={quoteattr(self.ae_title)} UserIsRequestor=\"false\">"
                f"<RoleIDCode {_DCM.format(code='110150', text='Application')}/>"
                f"</ActiveParticipant>{self._source()}</AuditMessage>")  # fmt: skip

    def _xml_security(self, a: AssociationRecord, what: str) -> str:
        event = self._event("110113", "Security Alert", "E", 4, _now(),
                            ("110126", "Node Authentication"))  # fmt: skip
        return (f"<AuditMessage>{event}{self._participant(a, True, 'source')}"
                f"{self._source()}<ParticipantObjectIdentification "
                f"ParticipantObjectID={quoteattr(what)} ParticipantObjectTypeCode=\"2\">"
                f"<ParticipantObjectIDTypeCode {_DCM.format(code='110182', text='Node ID')}/>"
                f"</ParticipantObjectIdentification></AuditMessage>")  # fmt: skip

    def _xml_operation(self, r: OperationRecord) -> str | None:
        outcome = {"success": 0, "warning": 4, "cancel": 4}.get(_category(r.status), 8)
        a = r.association
        if r.status == Status.NOT_AUTHORIZED:  # refused by the access rules
            return self._xml_security(a, f"{r.operation} not authorized")
        if r.operation == "C-FIND":
            query = base64.b64encode((r.sop_class or "").encode()).decode()
            return (f"<AuditMessage>{self._event('110112', 'Query', 'E', outcome, r.started)}"
                    f"{self._participant(a, True, 'source')}"
                    f"{self._participant(a, False, 'destination')}{self._source()}"
                    f"<ParticipantObjectIdentification ParticipantObjectID="
                    f"{quoteattr(r.sop_class or '')} ParticipantObjectTypeCode=\"2\" "
                    f"ParticipantObjectTypeCodeRole=\"24\"><ParticipantObjectIDTypeCode "
                    f"{_DCM.format(code='110181', text='SOP Class UID')}/>"
                    f"<ParticipantObjectQuery>{query}</ParticipantObjectQuery>"
                    f"</ParticipantObjectIdentification></AuditMessage>")  # fmt: skip
        if r.operation in ("C-STORE", "C-GET", "C-MOVE"):
            received = r.operation == "C-STORE"
            source = self._participant(a, True, "source" if received else "destination")
            ours = self._participant(a, False, "destination" if received else "source")
            study = ""
            if r.study:
                study = (f"<ParticipantObjectIdentification ParticipantObjectID="
                         f"{quoteattr(r.study)} ParticipantObjectTypeCode=\"2\" "
                         f"ParticipantObjectTypeCodeRole=\"3\"><ParticipantObjectIDTypeCode "
                         f"{_DCM.format(code='110180', text='Study Instance UID')}/>"
                         f"</ParticipantObjectIdentification>")  # fmt: skip
            action = "C" if received else "R"
            event = self._event("110104", "DICOM Instances Transferred", action, outcome,
                                r.started)  # fmt: skip
            return f"<AuditMessage>{event}{source}{ours}{self._source()}{study}</AuditMessage>"
        return None

    def close(self) -> None:
        with self._lock:
            if self._own and self._file is not None:
                self._file.close()
            self._file = None
        if self.syslog is not None:
            self.syslog.close()


def _now() -> float:
    return time.time()
