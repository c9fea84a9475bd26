"""The fuzz targets really fail when the code under test misbehaves (checked without atheris)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.targets import load

from dicomnet.errors import PDUDecodeError, ProtocolError
from dicomnet.ul.buffer import ReceiveBuffer
from dicomnet.ul.connection import ULConnection

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def _seed(target: str, name: str) -> bytes:
    return (CORPUS / target / name).read_bytes()


def test_ul_target_rejects_malformed_output(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = _seed("ul_acceptor", "dcmtk_echo-0")
    load("ul_acceptor")(seed)  # clean as it is
    original = ULConnection.data_to_send

    def garbled(self: ULConnection) -> list[bytes | memoryview]:
        out = original(self)
        return [b"\xff" + bytes(out[0])[1:], *out[1:]] if out else out

    monkeypatch.setattr(ULConnection, "data_to_send", garbled)
    with pytest.raises(PDUDecodeError):
        load("ul_acceptor")(seed)


def test_ul_target_rejects_exceptions_from_receive_data(monkeypatch: pytest.MonkeyPatch) -> None:
    def hostile(self: ULConnection, data: object, now: float | None = None) -> None:
        raise ProtocolError("peer input escaped receive_data")

    monkeypatch.setattr(ULConnection, "receive_data", hostile)
    with pytest.raises(ProtocolError):
        load("ul_requestor")(_seed("ul_requestor", "dcmtk_echo-0"))


def test_pdu_target_checks_what_the_buffer_delivers(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = _seed("pdu", "dcmtk_echo-rq-stream")
    load("pdu")(seed)
    original = ReceiveBuffer.next_pdu

    def dropping(self: ReceiveBuffer) -> memoryview | None:
        view = original(self)
        if view is not None and view[0] == 0x04:  # lose the P-DATA-TF PDUs
            return original(self)
        return view

    monkeypatch.setattr(ReceiveBuffer, "next_pdu", dropping)
    with pytest.raises(AssertionError, match=r"leading bytes|fed"):
        load("pdu")(seed)


def test_dimse_target_checks_the_reassembled_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from dicomnet.dimse import fragment

    seed = _seed("dimse", "dcmtk_02_C_STORE_RQ-split")
    load("dimse")(seed)
    original = fragment.Reassembler.feed_pdv

    def truncating(self: fragment.Reassembler, pdv: object) -> object:
        done = original(self, pdv)  # type: ignore[arg-type]
        if done is not None:
            ctx, command, data_set = done
            return ctx, command[:-2], data_set
        return done

    monkeypatch.setattr(fragment.Reassembler, "feed_pdv", truncating)
    with pytest.raises(AssertionError, match="reassembled command"):
        load("dimse")(seed)
