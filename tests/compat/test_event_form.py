"""Events as pynetdicom handlers and their tests use them.

* A request that could carry a data set but did not (an N-ACTION without Action Information,
  PS3.7 10.1.4.1.4; an N-EVENT-REPORT without Event Information) gives an empty ``Dataset``,
  as in pynetdicom: sent by a real pynetdicom SCU to our SCP, the handler reads it and answers.
* A data set property of an event whose request cannot carry one raises an AttributeError
  (``hasattr(event, "dataset")`` is False), as in pynetdicom.
* ``Event(assoc, event, {"request": ..., "context": ...})``, pynetdicom's constructor form,
  builds an event a handler can be tested with.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from dicomnet import evt
from dicomnet import presentation as d_presentation
from dicomnet.ae import AE
from dicomnet.dimse.payload import Payload
from dicomnet.dimse.primitives import C_FIND
from dicomnet.events import Event, NoDataSetError
from dicomnet.presentation import build_context

VERIFICATION = "1.2.840.10008.1.1"
COMMITMENT = "1.2.840.10008.1.20.1"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def test_optional_data_sets_absent_are_empty_and_echo_has_none() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    seen: dict[str, Any] = {}

    def on_action(event: evt.Event) -> tuple[int, Dataset]:
        seen["action"] = event.action_information
        return 0, Dataset()

    def on_report(event: evt.Event) -> tuple[int, None]:
        seen["report"] = event.event_information
        return 0, None

    def on_echo(event: evt.Event) -> int:
        seen["echo"] = hasattr(event, "dataset"), hasattr(event, "identifier")
        return 0

    ae = AE("SCP")
    ae.add_supported_context(COMMITMENT)
    ae.add_supported_context(VERIFICATION)
    handlers = [(evt.EVT_N_ACTION, on_action), (evt.EVT_N_EVENT_REPORT, on_report),
                (evt.EVT_C_ECHO, on_echo)]  # fmt: skip
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    try:
        scu = pynetdicom.AE(ae_title="SCU")
        scu.add_requested_context(COMMITMENT)
        scu.add_requested_context(VERIFICATION)
        assoc = scu.associate("127.0.0.1", server.server_address[1])
        assert assoc.is_established
        status, _ = assoc.send_n_action(None, 1, COMMITMENT, "1.2.840.10008.1.20.1.1")
        assert status.Status == 0
        status, _ = assoc.send_n_event_report(None, 1, COMMITMENT, "1.2.840.10008.1.20.1.1")
        assert status.Status == 0
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()
    assert seen == {"action": Dataset(), "report": Dataset(), "echo": (False, False)}


def test_pynetdicoms_event_constructor_form() -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = "DOE^J*"
    request = C_FIND(MessageID=7, AffectedSOPClassUID=FIND)
    request.Identifier = Payload.from_dataset(identifier, IMPLICIT)
    cx = build_context(FIND, IMPLICIT)
    cx.context_id, cx.transfer_syntax = 1, IMPLICIT
    cancelled: list[int] = []
    event = Event(None, evt.EVT_C_FIND, {"request": request, "context": cx,
                                         "_is_cancelled": lambda mid: cancelled.append(mid)})  # fmt: skip
    assert event.identifier.PatientName == "DOE^J*"
    assert event.event is evt.EVT_C_FIND and event.context is cx
    assert event.is_cancelled is False and cancelled == [7]
    with pytest.raises(NoDataSetError):
        _ = Event(None, evt.EVT_C_ECHO).dataset
    with pytest.raises(AttributeError):
        _ = Event(None, evt.EVT_C_ECHO).dataset


def test_a_hand_built_request_with_a_bytesio_data_set() -> None:
    """pynetdicom's handler tests put the encoded data set in the request as a BytesIO; the
    event decodes it with the context's transfer syntax, in both libraries."""
    pynetdicom = pytest.importorskip("pynetdicom")
    from io import BytesIO

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from dicomnet.dimse_primitives import C_STORE as D_C_STORE

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "DOE^JANE"
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, True
    write_dataset(out, ds)
    encoded = out.getvalue()
    seen = []
    for primitives, presentation, events in (
        (pynetdicom.dimse_primitives, pynetdicom.presentation, pynetdicom.events),
        (None, d_presentation, evt),
    ):  # fmt: skip
        request = primitives.C_STORE() if primitives else D_C_STORE()
        request.MessageID = 1
        request.AffectedSOPClassUID = ds.SOPClassUID
        request.AffectedSOPInstanceUID = ds.SOPInstanceUID
        request.DataSet = BytesIO(encoded)
        cx = presentation.build_context(ds.SOPClassUID, IMPLICIT)
        cx.context_id, cx.result = 1, 0
        # pynetdicom's events carry the (ID, abstract, transfer) tuple, and so may ours
        for context in (cx.as_tuple, cx) if primitives is None else (cx.as_tuple,):
            event = events.Event(None, events.EVT_C_STORE, {"request": request,
                                                            "context": context})  # fmt: skip
            seen.append((str(event.dataset.PatientName), event.encoded_dataset(include_meta=False)))
            request.DataSet = BytesIO(encoded)
    assert seen[0] == seen[1] == seen[2] == ("DOE^JANE", encoded)


def _fire_own_events(lib: Any, events: Any) -> list[object]:
    """What ``events.trigger`` gives for an application's own event types on a real
    association of ``lib`` to a dicomnet SCP."""
    scp = AE()
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        mine = events.InterventionEvent("EVT_MINE", "an application's own intervention")
        note = events.NotificationEvent("EVT_NOTE", "an application's own notification")
        seen: list[object] = []
        ae = lib.AE()
        ae.add_requested_context(VERIFICATION)
        assoc = ae.associate(
            "127.0.0.1", server.server_address[1],
            evt_handlers=[(mine, lambda e, factor: e.my_value * factor, [10]),
                          (note, lambda e: seen.append((e.event.name, e.my_value)))],
        )  # fmt: skip
        assert assoc.is_established
        out: list[object] = [events.trigger(assoc, mine, {"my_value": 4})]
        out.append(events.trigger(assoc, note, {"my_value": 5}))
        out.append(seen)

        def fails(event: Any) -> None:
            raise KeyError("from the handler")

        assoc.bind(mine, fails)
        with pytest.raises(KeyError):  # an intervention handler's exception reaches the caller
            events.trigger(assoc, mine, {"my_value": 1})
        assoc.release()
        return out
    finally:
        server.shutdown()


def test_trigger_fires_an_applications_own_events_as_pynetdicoms() -> None:
    """pynetdicom's public ``events.trigger``: an intervention event's handler result comes
    back, a notification event's handlers are called and None comes back, the attributes given
    are the event's."""
    pynetdicom = pytest.importorskip("pynetdicom")
    from pynetdicom import events as p_events

    import dicomnet

    theirs = _fire_own_events(pynetdicom, p_events)
    ours = _fire_own_events(dicomnet, evt)
    assert ours == theirs == [40, None, [("EVT_NOTE", 5)]]
