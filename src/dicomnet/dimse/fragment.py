"""DIMSE message fragmentation into P-DATA-TF PDUs, and reassembly of received PDVs.

Theory of operation
-------------------
Sending (PS3.7 section 9.1 / Annex E, PS3.8 section 9.3.5 and Annex E): a message is its
command set (group 0000, Implicit VR LE) followed by an optional data set. Each is cut into
fragments; every fragment travels in one PDV whose message control header says command (bit 0)
or data set (bit 1 clear) and last fragment (bit 1). All command fragments come first, then the
data set fragments. :func:`fragment` yields one *list of buffers per P-DATA-TF PDU* -- the
12-byte PDU + PDV header and a payload slice -- so a driver can hand each list to
``socket.sendmsg``/``transport.writelines`` without joining (scatter-gather). Payloads are
memoryview slices of an in-memory :class:`~dicomnet.dimse.payload.Payload`, or whatever a
file-backed payload (:class:`dicomnet.datasource.DataSource`) yields: bounded file reads, or
``FileRegion`` items a transport sends with ``sendfile``. A 1 GB file is sent with bounded
memory, and this module never opens it.

PDU size: the Maximum Length a peer announces (PS3.8 Annex D.1, sub-item 51H) limits the
*variable field* of the P-DATA-TF PDUs it receives, i.e. the PDV items including their 4-byte
item length, 1-byte context id and 1-byte message control header (PS3.8 section 9.3.5.1), and
excluding the 6-byte PDU header. One PDV per PDU therefore carries at most ``max - 6`` bytes;
we round that down to an even number because every fragment we send has an even length
(DCMTK rejects odd ones; the data set and command set are even-length encodings anyway).
0 means "no limit": we still cap PDUs at :data:`MAX_PDATA_CEILING`. The smallest usable
maximum is :data:`MIN_PDATA_LENGTH` (one PDV with a 2-byte payload). A short command and a short
data set that fit together share one PDU (two PDVs).

Receiving: :class:`Reassembler` takes PDVs one at a time (from any number of PDUs) and returns
``(context_id, command_bytes, data_set)`` when a message is complete. It checks the rules of
PS3.7 Annex E / PS3.8 9.3.5 as the PDVs arrive: the context must be accepted, a message never
changes context, data set fragments only follow the last command fragment; it reads
CommandDataSetType (0000,0800) out of the completed command to know whether a data set follows
(0101H: none, PS3.7 E.2), and whether the CommandField is one we know. It decodes the command
once with the strict command codec and hands the elements on with the message
(:meth:`Reassembler.take_command_elements`), so the provider does not decode it again; a command
the strict codec refuses is read with a tiny lenient Implicit VR LE scan instead, as before.
Sizes are checked before anything is kept: the command against ``max_command_size``, command +
data set against ``max_message_size``.

Where the data set goes is not decided here (this layer touches no file): data set bytes stay
in memory up to ``spool_threshold`` -- a data set that came in one fragment is handed out as a
view into the received PDU, without a copy. When the threshold is crossed the reassembler asks
its :class:`~dicomnet.dimse.payload.PayloadFactory` (``payloads``, given by the application
side: an association passes :class:`dicomnet.datasource.SpoolingFactory`) for a
:class:`~dicomnet.dimse.payload.DataSink` for this message, writes the fragments received so far
and every later one into it, and at the end takes ``sink.finish(ts)`` as the data set. In-memory
data sets are made by the same factory (``payloads.memory``). Without a factory everything stays
in memory, as plain payloads (:class:`~dicomnet.dimse.payload.Payload`).

Violations raise :class:`~dicomnet.errors.ProtocolError` (remote) carrying the A-ABORT they
imply (source 2, service provider; PS3.8 Table 9-26):

=====================================================================  ======
PDV on a context that is not accepted                                   2/5
context changes in the middle of a message                              2/5
data set PDV before the command's last fragment                         2/5
command PDV after the command was complete (while its data set flows)   2/5
command set larger than ``max_command_size``                            2/6
message (command + data set) larger than ``max_message_size``           2/6
command set that cannot be parsed (bad element lengths, group != 0000,
missing CommandField or CommandDataSetType)                             2/6
unknown CommandField value                                              2/4
=====================================================================  ======

A *local* failure of the sink (disk full, unusable spool directory: the sink raises
:class:`~dicomnet.errors.DimseError`) is not the peer's fault: the rest
of the message is drained and discarded, and its last fragment raises
:class:`ReassemblyResourceError` (a DimseError carrying the context and command) so that the
provider can answer a request with A700H (out of resources) and the association goes on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from dicomnet.dimse.commands import decode_command
from dicomnet.dimse.payload import DataSink, Payload, PayloadFactory
from dicomnet.errors import DimseError, ProtocolError
from dicomnet.ul.codec import pdata_header as _pdata_header
from dicomnet.ul.pdu import PDV

if TYPE_CHECKING:
    from dicomnet.dimse.checker import DataSetChecker

__all__ = [
    "COMMAND_FIELDS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_SPOOL_THRESHOLD",
    "MAX_COMMAND_SIZE",
    "MAX_PDATA_CEILING",
    "MIN_PDATA_LENGTH",
    "NO_DATASET",
    "CommandInfo",
    "DataSetCheckFactory",
    "Reassembler",
    "ReassemblyResourceError",
    "encode_message_pdus",
    "fragment",
    "pdv_payload_size",
    "scan_command",
]

#: Largest P-DATA-TF variable field we ever send (used when the peer says 0 = unlimited, or
#: announces more than this).
MAX_PDATA_CEILING = 4 << 20
#: Smallest usable Maximum Length: one PDV header (6 bytes) plus a 2-byte (even) payload.
MIN_PDATA_LENGTH = 8
DEFAULT_SPOOL_THRESHOLD = 8 << 20
DEFAULT_MAX_MESSAGE_SIZE = 4 << 30
MAX_COMMAND_SIZE = 64 << 10
#: CommandDataSetType value meaning "no data set" (PS3.7 E.2).
NO_DATASET = 0x0101

# PS3.7 E.1-1 / E.2: command fields of requests and responses, and C-CANCEL-RQ.
COMMAND_FIELDS = frozenset(
    {
        0x0001, 0x8001, 0x0010, 0x8010, 0x0020, 0x8020, 0x0021, 0x8021, 0x0030, 0x8030,
        0x0100, 0x8100, 0x0110, 0x8110, 0x0120, 0x8120, 0x0130, 0x8130, 0x0140, 0x8140,
        0x0150, 0x8150, 0x0FFF,
    }
)  # fmt: skip

_PDU_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")
_ELEMENT = struct.Struct("<HHI")  # Implicit VR LE element header (PS3.5 7.1.3)
_US = struct.Struct("<H")
_P_DATA_TF = 0x04
_CMD = 0x01
_LAST = 0x02


#: Smallest PDV payload sent as a file region (``sendfile``) rather than read: below it the
#: per-PDU system calls cost more than the copy they save.
FILE_REGION_MIN = 128 << 10


def pdv_payload_size(max_pdata_length: int) -> int:
    """Largest even fragment that fits one PDV in one PDU under ``max_pdata_length``."""
    if max_pdata_length == 0 or max_pdata_length > MAX_PDATA_CEILING:
        max_pdata_length = MAX_PDATA_CEILING
    if max_pdata_length < MIN_PDATA_LENGTH:
        raise DimseError(
            f"maximum P-DATA length {max_pdata_length} is below the usable minimum "
            f"{MIN_PDATA_LENGTH}"
        )
    return (max_pdata_length - 6) & ~1


def _fragments(
    context_id: int, base_control: int, chunks: Iterator[Any], size: int
) -> Iterator[list[Any]]:
    remaining = size
    for chunk in chunks:
        n = len(chunk)
        remaining -= n
        if remaining < 0:
            raise DimseError("data set source produced more bytes than its size")
        control = base_control | _LAST if remaining == 0 else base_control
        yield [_pdata_header(context_id, control, n), chunk]
        if remaining == 0:
            return
    if remaining:
        raise DimseError("data set source produced fewer bytes than its size")
    # size == 0: one empty last fragment so the peer sees the end of the data set.
    yield [_pdata_header(context_id, base_control | _LAST, 0)]


def fragment(
    context_id: int,
    command_bytes: bytes | memoryview,
    data: Payload | None,
    max_pdata_length: int,
    *,
    file_regions: bool = False,
) -> Iterator[list[Any]]:
    """The P-DATA-TF PDUs of one message, each as a scatter-gather list of buffers.

    ``max_pdata_length`` is the peer's Maximum Length (0 = unlimited, capped locally). Every
    PDU's variable field is <= that maximum; fragments have even lengths. ``data`` None means
    the command says "no data set"; an empty payload still sends one empty last PDV.
    Buffers of a file-backed payload are read lazily, one block at a time -- or, with
    ``file_regions`` (a transport that can ``sendfile``) and PDVs of at least
    :data:`FILE_REGION_MIN` bytes, not read at all: those fragments are the payload's
    ``iter_regions`` items (:class:`dicomnet.datasource.FileRegion`), valid until the next PDU
    is asked for.
    """
    payload = pdv_payload_size(max_pdata_length)
    cmd = memoryview(command_bytes)
    ncmd = cmd.nbytes
    if ncmd == 0:
        raise DimseError("empty command set")
    limit = payload + 6  # the effective variable-field maximum
    if data is not None:
        dsize = data.size
        if ncmd + dsize + 12 <= limit:
            # Both fit in one PDU as two PDVs (PS3.8 9.3.5: one or more PDV items).
            items: list[bytes | memoryview] = [
                _PDU_HEADER.pack(_P_DATA_TF, ncmd + dsize + 12),
                _PDV_HEADER.pack(ncmd + 2, context_id, _CMD | _LAST),
                cmd,
                _PDV_HEADER.pack(dsize + 2, context_id, _LAST),
            ]
            if dsize:
                buf = data.getbuffer()
                items.append(buf if buf is not None else data.read())
            yield items
            return
    yield from _fragments(
        context_id, _CMD, (cmd[i : i + payload] for i in range(0, ncmd, payload)), ncmd
    )
    if data is not None:
        if uses_file_regions(data, max_pdata_length, file_regions):
            yield from _fragments(context_id, 0, data.iter_regions(payload), data.size)
        else:
            yield from _fragments(context_id, 0, data.iter_chunks(payload), data.size)


def uses_file_regions(data: Payload | None, max_pdata_length: int, file_regions: bool) -> bool:
    """Whether :func:`fragment` sends ``data`` as FileRegion items (each valid only until the
    next PDU is produced, so such PDUs must be sent one by one)."""
    return (
        file_regions
        and data is not None
        and data.is_file
        and pdv_payload_size(max_pdata_length) >= FILE_REGION_MIN
    )


class _MessageLike(Protocol):
    @property
    def data_set(self) -> Payload | None: ...

    def encode_command(self) -> bytes: ...


def encode_message_pdus(
    context_id: int, msg: _MessageLike, max_pdata_length: int
) -> Iterator[list[bytes | memoryview]]:
    """:func:`fragment` for a DIMSE message object (``encode_command()`` + ``data_set``)."""
    return fragment(context_id, msg.encode_command(), msg.data_set, max_pdata_length)


# -- reassembly ------------------------------------------------------------------------------


class ReassemblyResourceError(DimseError):
    """A message was received completely but its data set could not be kept (local I/O error).

    Raised at the message's last fragment; the association stays usable. ``context_id`` and
    ``command`` let the provider answer a request with a failure status (A700H, out of
    resources).
    """

    def __init__(self, message: str, context_id: int, command: bytes) -> None:
        super().__init__(message)
        self.context_id = context_id
        self.command = command


class CommandInfo:
    """What the reassembler needs from a command set: its fields of interest."""

    __slots__ = ("command_field", "data_set_type", "message_id", "responded_to")

    def __init__(
        self,
        command_field: int,
        data_set_type: int,
        message_id: int | None,
        responded_to: int | None,
    ) -> None:
        self.command_field = command_field
        self.data_set_type = data_set_type
        self.message_id = message_id
        self.responded_to = responded_to

    @property
    def has_data_set(self) -> bool:
        """PS3.7 E.2: 0101H means no data set, any other value means one follows."""
        return self.data_set_type != NO_DATASET


def _bad_command(why: str) -> ProtocolError:
    return ProtocolError(f"unparseable command set: {why}", abort_source=2, abort_reason=6)


def scan_command(data: bytes | memoryview) -> CommandInfo:
    """Walk the Implicit VR LE elements of a command set (PS3.7 6.3.1) for a few fields.

    Raises ProtocolError 2/6 when it cannot be parsed, 2/4 for an unknown CommandField.
    """
    view = memoryview(data)
    end = view.nbytes
    pos = 0
    fields: dict[int, int] = {}
    unpack = _ELEMENT.unpack_from
    while pos < end:
        if pos + 8 > end:
            raise _bad_command(f"truncated element header at offset {pos}")
        group, elem, length = unpack(view, pos)
        pos += 8
        if group != 0x0000:
            raise _bad_command(f"element ({group:04X},{elem:04X}) outside group 0000")
        if length > end - pos:
            raise _bad_command(f"element (0000,{elem:04X}) length {length} past the end")
        if elem in (0x0100, 0x0110, 0x0120, 0x0800):
            if length != 2:
                raise _bad_command(f"element (0000,{elem:04X}) is not a US value")
            fields[elem] = _US.unpack_from(view, pos)[0]
        pos += length
    if 0x0100 not in fields:
        raise _bad_command("no CommandField (0000,0100)")
    if 0x0800 not in fields:
        raise _bad_command("no CommandDataSetType (0000,0800)")
    field = fields[0x0100]
    if field not in COMMAND_FIELDS:
        raise ProtocolError(f"unknown command field 0x{field:04X}", abort_source=2, abort_reason=4)
    return CommandInfo(field, fields[0x0800], fields.get(0x0110), fields.get(0x0120))


def read_command(data: bytes) -> tuple[CommandInfo, dict[int, object] | None]:
    """:func:`scan_command`'s answer and, when the command set decodes cleanly with
    :func:`~dicomnet.dimse.commands.decode_command` (the common case), its decoded elements,
    so the provider does not walk the same bytes a second time.

    Anything the strict decoder refuses goes through :func:`scan_command` exactly as before
    (same errors, same leniency), with no elements: the provider then decodes, and reports,
    as it always did.
    """
    try:
        elements = decode_command(data)
    except DimseError:
        return scan_command(data), None
    field = elements.get(0x0100)
    data_set_type = elements.get(0x0800)
    if type(field) is int and type(data_set_type) is int and field in COMMAND_FIELDS:
        mid = elements.get(0x0110)
        responded = elements.get(0x0120)
        info = CommandInfo(
            field,
            data_set_type,
            mid if type(mid) is int else None,
            responded if type(responded) is int else None,
        )
        return info, elements
    return scan_command(data), None


class DataSetCheckFactory(Protocol):
    """``(context_id, command_info, command_elements) -> checker or None``: called when a
    command announcing a data set is complete (see :class:`Reassembler`)."""

    def __call__(
        self, context_id: int, info: CommandInfo, elements: dict[int, object] | None, /
    ) -> DataSetChecker | None: ...


class Reassembler:
    """Rebuild DIMSE messages from PDVs (see the module docstring for the rules and errors).

    ``is_accepted``: a callable ``context_id -> bool`` or a collection of accepted context IDs.
    ``payloads``: the :class:`~dicomnet.dimse.payload.PayloadFactory` that makes the received
    data sets -- in memory up to ``spool_threshold`` bytes, in a sink it opens above (e.g.
    :class:`dicomnet.datasource.SpoolingFactory`: a spool file, possibly behind a Part 10 header
    so that the storage SCP can ``move_to`` it into place). None: everything stays in memory
    (:class:`~dicomnet.dimse.payload.Payload`).
    ``transfer_syntax_of``: optional ``context_id -> str`` to label the returned payloads.
    ``check_dataset``: optional ``(context_id, command_info, command_elements) -> checker``
    called when a command with a data set is complete; the checker (a
    :class:`~dicomnet.dimse.checker.DataSetChecker`, or None to skip) is fed every data set
    fragment as it arrives, finished at the end and kept as the payload's ``check``.
    """

    __slots__ = (
        "_checker",
        "_cmd_elements",
        "_cmd_info",
        "_cmd_parts",
        "_cmd_size",
        "_command",
        "_context",
        "_data_parts",
        "_data_size",
        "_done_elements",
        "_failure",
        "_is_accepted",
        "_sink",
        "check_dataset",
        "max_command_size",
        "max_message_size",
        "payloads",
        "spool_threshold",
        "transfer_syntax_of",
    )

    def __init__(
        self,
        is_accepted: Callable[[int], bool] | Collection[int],
        spool_threshold: int = DEFAULT_SPOOL_THRESHOLD,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        payloads: PayloadFactory | None = None,
        max_command_size: int = MAX_COMMAND_SIZE,
        transfer_syntax_of: Callable[[int], str | None] | None = None,
        check_dataset: DataSetCheckFactory | None = None,
    ) -> None:
        if callable(is_accepted):
            self._is_accepted: Callable[[int], bool] = is_accepted
        else:
            accepted = frozenset(is_accepted)
            self._is_accepted = accepted.__contains__
        self.spool_threshold = spool_threshold
        self.max_message_size = max_message_size
        self.max_command_size = max_command_size
        self.payloads = payloads
        self.transfer_syntax_of = transfer_syntax_of
        self.check_dataset = check_dataset
        self._checker: DataSetChecker | None = None
        self._context: int | None = None
        self._cmd_parts: list[memoryview | bytes] = []
        self._cmd_size = 0
        self._command: bytes | None = None
        self._cmd_info: CommandInfo | None = None
        self._cmd_elements: dict[int, object] | None = None
        self._done_elements: dict[int, object] | None = None
        self._data_parts: list[memoryview | bytes] = []
        self._data_size = 0
        self._sink: DataSink | None = None
        self._failure: DimseError | None = None

    @property
    def in_progress(self) -> bool:
        """True while part of a message has been received."""
        return self._context is not None

    @property
    def sink(self) -> DataSink | None:
        """The sink of the message being received, once its data set crossed the threshold."""
        return self._sink

    def take_command_elements(self) -> dict[int, object] | None:
        """The decoded command elements of the message :meth:`feed_pdv` just completed (None
        when its command set needs the lenient path); each result is handed out once."""
        elements, self._done_elements = self._done_elements, None
        return elements

    @property
    def command_info(self) -> CommandInfo | None:
        """The scanned command of the message whose data set is being received."""
        return self._cmd_info

    def reset(self) -> None:
        """Forget the partial message (after an abort); its sink is discarded."""
        if self._sink is not None:
            self._sink.discard()
            self._sink = None
        self._context = None
        self._cmd_parts = []
        self._cmd_size = 0
        self._command = None
        self._cmd_info = None
        self._cmd_elements = None
        self._data_parts = []
        self._data_size = 0
        self._failure = None
        self._checker = None

    close = reset

    def _fail(self, message: str, reason: int) -> ProtocolError:
        self.reset()
        return ProtocolError(message, abort_source=2, abort_reason=reason)

    def _sink_write(self, ctx: int, data: bytes | memoryview) -> None:
        sink = self._sink
        if sink is None:
            assert self._command is not None and self.payloads is not None
            sink = self._sink = self.payloads.spool(ctx, self._command)
            for part in self._data_parts:
                sink.write(part)
            self._data_parts = []
        sink.write(data)

    def feed_pdv(self, pdv: PDV) -> tuple[int, bytes, Payload | None] | None:
        """Add one PDV; the completed ``(context_id, command_bytes, data_set)`` or None."""
        ctx = pdv.context_id
        if self._context is None:
            if not self._is_accepted(ctx):
                raise self._fail(f"PDV on presentation context {ctx}, not accepted", 5)
            self._context = ctx
        elif ctx != self._context:
            raise self._fail(
                f"presentation context changed from {self._context} to {ctx} mid-message", 5
            )
        data = pdv.data
        n = len(data)
        control = pdv.control
        if control & _CMD:
            if self._command is not None:
                raise self._fail("command fragment after the command set was complete", 5)
            self._cmd_size += n
            if self._cmd_size > self.max_command_size:
                raise self._fail(f"command set larger than {self.max_command_size} bytes", 6)
            self._cmd_parts.append(data)
            if not control & _LAST:
                return None
            parts = self._cmd_parts
            command = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
            self._cmd_parts = []
            try:
                info, elements = read_command(command)
            except ProtocolError as exc:
                self.reset()
                raise exc
            if not info.has_data_set:
                self.reset()
                self._done_elements = elements
                return ctx, command, None
            self._command = command
            self._cmd_info = info
            self._cmd_elements = elements
            if self.check_dataset is not None:
                self._checker = self.check_dataset(ctx, info, elements)
            return None
        # Data set fragment (PS3.8 E.2: only after the command's last fragment).
        if self._command is None:
            raise self._fail("data set fragment before the command set was complete", 5)
        total = self._data_size + n
        if total + len(self._command) > self.max_message_size:
            raise self._fail(f"message larger than {self.max_message_size} bytes", 6)
        if self._checker is not None:
            self._checker.feed(data)
        if self._failure is not None:
            pass  # a local write failure: drain the rest of the message, keep nothing
        elif self._sink is not None or (
            total > self.spool_threshold and self.payloads is not None
        ):
            try:
                self._sink_write(ctx, data)
            except DimseError as exc:
                # Local resources (disk full, bad spool directory): not the peer's fault. Drain
                # the message and report it at its end so the service can answer A700H.
                if self._sink is not None:
                    self._sink.discard()
                    self._sink = None
                self._data_parts = []
                self._failure = exc
        elif n:
            self._data_parts.append(data)
        self._data_size = total
        if not control & _LAST:
            return None
        if self._failure is not None:
            failure = ReassemblyResourceError(str(self._failure), ctx, self._command)
            self.reset()
            raise failure
        command = self._command
        ts = self.transfer_syntax_of(ctx) if self.transfer_syntax_of else None
        source: Payload
        if self._sink is not None:
            source = self._sink.finish(ts)
            self._sink = None
        else:
            parts = self._data_parts
            # One fragment: zero copy, a view into the received PDU's own buffer.
            whole = parts[0] if len(parts) == 1 else b"".join(parts)
            payloads = self.payloads
            if payloads is None:
                source = Payload(data=whole, transfer_syntax=ts)
            else:
                source = payloads.memory(whole, ts)
        self._data_parts = []
        if self._checker is not None:
            self._checker.finish()
            source.check = self._checker
        elements = self._cmd_elements
        self.reset()
        self._done_elements = elements
        return ctx, command, source
