"""Fuzz target ``dimse``: PDV reassembly, command set and message decoding (PS3.7 6.3, 9, E).

Theory of operation
-------------------
Input layout (read with :class:`fuzz._stream.Stream`)::

    cfg u8 | peer u8 | (context u8, control u8, blob)*

``cfg``: bits 0-1 spool threshold (8 MiB, 0, 16, 256 bytes: small values force the spool-file
path), bits 2-3 message size cap, bits 4-5 command size cap, bits 6-7 rotate the transfer syntax
assigned to each context (Implicit/Explicit VR LE, Explicit VR BE, Deflated). Every record is
one PDV fed to a :class:`~dicomnet.dimse.fragment.Reassembler` accepting the odd context IDs
and spooling into :data:`SPOOL_DIR` (:class:`~dicomnet.datasource.SpoolingFactory`).
Each completed message goes through :func:`~dicomnet.dimse.commands.decode_command`,
:func:`~dicomnet.dimse.messages.decode_message`, ``to_primitive``, a re-encode of its command,
and ``DataSource.decode`` of its data set (the step a service performs).

The same PDVs, one P-DATA-TF each, also go to a
:class:`~dicomnet.dimse.provider.DIMSEServiceProvider` over a fake association whose peer
Maximum Length is picked by ``peer`` (the value a hostile A-ASSOCIATE-RQ/AC announces): this
is the production path, including the failure responses the provider sends on its own.

Allowed: :class:`~dicomnet.errors.ProtocolError` (remote) from the reassembler and
:class:`~dicomnet.errors.DimseError` from decoding. Checked invariants (a failure is a crash):
the command and data set handed out are exactly the bytes of the PDVs fed; the failure response
of a faulty request (``DimseCommandError.response()``) always encodes and decodes;
``receive_primitive`` raises nothing but a remote ProtocolError (what the association
catches to abort); whatever the provider sends is well-formed P-DATA-TF within the peer's
Maximum Length; no spool file survives the end of the input.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Sequence

from dicomnet.datasource import DataSource, SpoolingFactory
from dicomnet.dimse.commands import decode_command
from dicomnet.dimse.fragment import Reassembler
from dicomnet.dimse.messages import DimseCommandError, DIMSEMessage, decode_message
from dicomnet.dimse.provider import DIMSEServiceProvider
from dicomnet.errors import DimseError, ProtocolError
from dicomnet.ul.codec import decode_pdu
from dicomnet.ul.pdu import PDV, PDataTF
from fuzz._stream import Stream

__all__ = ["SPOOL_DIR", "test_one_input"]

_SPOOL_THRESHOLD = (8 << 20, 0, 16, 256)
_MAX_MESSAGE = (4 << 30, 64, 1024, 65536)
_MAX_COMMAND = (64 << 10, 20, 200, 1024)
_SYNTAXES = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
)

# The peer's Maximum Length as a hostile A-ASSOCIATE PDU may announce it (0 = unlimited).
_PEER_MAX = (16384, 0, 8, 9, 4, 1, 100, 1 << 20)

SPOOL_DIR = tempfile.mkdtemp(prefix="dicomnet-fuzz-spool-")
atexit.register(shutil.rmtree, SPOOL_DIR, True)


class _FakeDul:
    """The DULLike side of a fake association: records what the provider sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    @property
    def is_alive(self) -> bool:
        return True

    sends_file_regions = False

    def send_pdata_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        self.sent.append(b"".join(bytes(c) for c in chunks))

    def send_pdata_many(self, pdus: Iterable[Sequence[bytes | memoryview]]) -> None:
        for chunks in pdus:
            self.send_pdata_chunks(chunks)

    def wait_for_activity(self, deadline: float | None) -> bool:
        return False


class _FakeAssociation:
    """AssociationLike for the provider: odd contexts accepted."""

    dimse_timeout = None
    accepted_context_ids = frozenset(range(1, 256, 2))

    def __init__(self, peer_max: int) -> None:
        self.dul = _FakeDul()
        self.peer_max_pdata_length = peer_max

    @staticmethod
    def clock() -> float:
        return 0.0


def _feed_provider(
    provider: DIMSEServiceProvider, assoc: _FakeAssociation, ctx: int, control: int, data: bytes
) -> None:
    try:
        provider.receive_primitive(PDataTF((PDV(ctx, control, data),)))
    except ProtocolError as exc:
        if exc.local:
            raise
        provider.connection_lost()
    limit = assoc.peer_max_pdata_length
    for pdu in assoc.dul.sent:
        decoded = decode_pdu(pdu)  # a PDUDecodeError here is a crash: we framed it badly
        if not isinstance(decoded, PDataTF):
            raise AssertionError(f"the provider sent {type(decoded).__name__}")
        if limit >= 8 and len(pdu) - 6 > limit:
            raise AssertionError(f"sent a {len(pdu) - 6}-byte P-DATA-TF, peer maximum {limit}")
    assoc.dul.sent.clear()


def _check_message(command: bytes, data_set: DataSource | None, expected_data: bytes) -> None:
    if data_set is not None and (
        data_set.size != len(expected_data) or data_set.read() != expected_data
    ):
        raise AssertionError("the reassembled data set differs from the PDVs fed")
    try:
        decode_command(command)
    except DimseError:
        pass
    try:
        msg = decode_message(command, data_set)
    except DimseCommandError as exc:
        rsp = exc.response()
        if rsp is not None:
            # The failure response to a faulty request must always be sendable.
            decode_message(rsp.encode_command())
        return
    except DimseError:
        return
    try:
        msg.to_primitive()
        again = decode_message(msg.encode_command(), data_set)
    except DimseError:
        pass
    else:
        if again.command_set != msg.command_set:
            raise AssertionError(
                f"command round trip: {msg.command_set!r} != {again.command_set!r}"
            )
    if data_set is not None and data_set.transfer_syntax is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about odd encodings; not our concern
            try:
                data_set.decode()
            except DimseError:
                pass


def test_one_input(data: bytes) -> None:
    s = Stream(data)
    cfg = s.u8()
    peer = s.u8()
    rotate = cfg >> 6

    def syntax_of(ctx: int) -> str:
        return _SYNTAXES[(ctx // 2 + rotate) % 4]

    reassembler = Reassembler(
        lambda ctx: ctx & 1 == 1,
        spool_threshold=_SPOOL_THRESHOLD[cfg & 3],
        max_message_size=_MAX_MESSAGE[cfg >> 2 & 3],
        payloads=SpoolingFactory(SPOOL_DIR),
        max_command_size=_MAX_COMMAND[cfg >> 4 & 3],
        transfer_syntax_of=syntax_of,
    )
    assoc = _FakeAssociation(_PEER_MAX[peer & 7])
    # spooling into SPOOL_DIR with the same limits, as an association configures it
    provider = DIMSEServiceProvider(
        assoc,
        payloads=SpoolingFactory(SPOOL_DIR),
        spool_threshold=_SPOOL_THRESHOLD[cfg & 3],
        max_message_size=_MAX_MESSAGE[cfg >> 2 & 3],
    )
    received: list[DIMSEMessage] = []
    provider.on_receive_dimse_message = received.append
    commands: list[bytes] = []
    datas: list[bytes] = []
    try:
        while not s.exhausted:
            ctx, control, payload = s.u8(), s.u8(), s.blob()
            _feed_provider(provider, assoc, ctx, control, payload)
            (commands if control & 1 else datas).append(payload)
            try:
                done = reassembler.feed_pdv(PDV(ctx, control, payload))
            except ProtocolError as exc:
                if exc.local:
                    raise
                commands.clear()
                datas.clear()
                continue
            except DimseError:  # ReassemblyResourceError: a local spool failure
                commands.clear()
                datas.clear()
                continue
            if done is None:
                continue
            _, command, data_set = done
            if command != b"".join(commands):
                raise AssertionError("the reassembled command differs from the PDVs fed")
            try:
                _check_message(command, data_set, b"".join(datas))
            finally:
                if data_set is not None:
                    data_set.close()
            commands.clear()
            datas.clear()
    finally:
        reassembler.reset()
        provider.connection_lost()
        for msg in received:
            if isinstance(msg.data_set, DataSource):
                msg.data_set.close()
    leaked = os.listdir(SPOOL_DIR)
    if leaked:
        for name in leaked:
            os.unlink(os.path.join(SPOOL_DIR, name))
        raise AssertionError(f"spool files left behind: {leaked}")
