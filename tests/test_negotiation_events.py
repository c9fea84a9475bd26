"""The negotiation intervention events pynetdicom programs bind: EVT_ASYNC_OPS answers the
asynchronous operations window (PS3.7 D.3.3.3) and EVT_SOP_COMMON sees the SOP class common
extended negotiation items (PS3.7 D.3.3.6), over a real association."""

from __future__ import annotations

from dicomnet import evt
from dicomnet.ae import AE
from dicomnet.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SOPClassCommonExtendedNegotiation,
)

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
STORAGE_SERVICE = "1.2.840.10008.4.2"


def test_async_ops_and_sop_common_handlers_decide() -> None:
    seen: dict[str, object] = {}

    def on_async(event: evt.Event) -> tuple[int, int]:
        seen["asked"] = (event.invoked, event.performed)
        return (3, 2)

    def on_common(event: evt.Event) -> dict[str, object]:
        seen["items"] = sorted(event.items)
        return event.items

    scp = AE(ae_title="SCP")
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_ASYNC_OPS, on_async),
                                            (evt.EVT_SOP_COMMON, on_common)])  # fmt: skip
    try:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 5
        window.maximum_number_operations_performed = 4
        common = SOPClassCommonExtendedNegotiation()
        common.sop_class_uid = CT
        common.service_class_uid = STORAGE_SERVICE
        scu = AE()
        scu.add_requested_context(VERIFICATION)
        assoc = scu.associate("127.0.0.1", server.address[1], ext_neg=[window, common])
        assert assoc.is_established
        assert seen == {"asked": (5, 4), "items": [CT]}
        # the AC carries the handler's answer (PS3.7 D.3.3.3)
        assert assoc.acceptor.async_ops_window == (3, 2)
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()


def test_without_handlers_the_ae_window_capped_by_the_request_is_offered() -> None:
    scp = AE(ae_title="SCP")
    scp.add_supported_context(VERIFICATION)
    scp.maximum_operations_invoked, scp.maximum_operations_performed = 7, 6
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 5
        window.maximum_number_operations_performed = 5
        scu = AE()
        scu.add_requested_context(VERIFICATION)
        window.maximum_number_operations_performed = 3
        assoc = scu.associate("127.0.0.1", server.address[1], ext_neg=[window])
        # (operations the requestor may invoke, ... perform): ours (6 performed, 7 invoked)
        # lowered to what was asked (5 invoked, 3 performed)
        assert assoc.acceptor.async_ops_window == (5, 3)
        assoc.release()
    finally:
        server.shutdown()
