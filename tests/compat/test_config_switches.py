"""``dicomnet._config`` switches pynetdicom programs set: UNRESTRICTED_STORAGE_SERVICE accepts
any SOP class as storage, STORE_RECV_CHUNKED_DATASET gives a C-STORE handler
``event.dataset_path`` (a Part 10 file), and ``event.encoded_dataset()`` is the received
data set behind its File Meta Information (PS3.10 7.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dicomnet import _config, evt
from dicomnet.ae import AE

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def switches() -> Iterator[None]:
    saved = (_config.UNRESTRICTED_STORAGE_SERVICE, _config.STORE_RECV_CHUNKED_DATASET)
    yield
    _config.UNRESTRICTED_STORAGE_SERVICE, _config.STORE_RECV_CHUNKED_DATASET = saved


def test_unrestricted_storage_and_dataset_path(switches: None, tmp_path: Path) -> None:
    source = dcmread(get_testdata_file("CT_small.dcm"))
    seen: dict[str, object] = {}

    def on_store(event: evt.Event) -> int:
        path = event.dataset_path
        assert path is not None and path.exists()
        stored = dcmread(path)  # a whole Part 10 file
        seen["uid"] = stored.SOPInstanceUID
        seen["ts"] = str(stored.file_meta.TransferSyntaxUID)
        encoded = event.encoded_dataset()
        assert encoded[128:132] == b"DICM" and encoded == path.read_bytes()
        assert event.encoded_dataset(include_meta=False) == encoded[len(encoded) - len(
            event.encoded_dataset(include_meta=False)):]  # fmt: skip
        return 0x0000

    _config.UNRESTRICTED_STORAGE_SERVICE = True
    _config.STORE_RECV_CHUNKED_DATASET = True
    scp = AE(ae_title="ANY")  # no supported context at all
    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
    try:
        scu = AE()
        scu.add_requested_context(CT, "1.2.840.10008.1.2.1")
        assoc = scu.associate("127.0.0.1", server.address[1])
        assert assoc.is_established  # accepted although the SCP lists no storage class
        assert int(assoc.send_c_store(source).Status) == 0
        assoc.release()
    finally:
        server.shutdown()
    assert seen == {"uid": source.SOPInstanceUID, "ts": "1.2.840.10008.1.2.1"}


def test_without_the_switches(switches: None) -> None:
    _config.UNRESTRICTED_STORAGE_SERVICE = False
    _config.STORE_RECV_CHUNKED_DATASET = False
    scp = AE(ae_title="ANY")
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        scu = AE()
        scu.add_requested_context(CT)
        assoc = scu.associate("127.0.0.1", server.address[1])
        # the CT context is rejected: abstract syntax not supported (PS3.8 Table 9-18: 3)
        assert assoc.accepted_contexts == []
        assert [cx.result for cx in assoc.rejected_contexts] == [3]
        assoc.release()
    finally:
        server.shutdown()
