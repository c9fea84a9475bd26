"""A Print SCP on the real pynetdicom, the peer of pynetdicom's print example (its docs have no
Print SCP example): ``python pynetdicom_print_scp.py PORT``. It supports the Basic Grayscale
Print Management Meta SOP Class, answers the Printer N-GET with a NORMAL printer, creates film
sessions / film boxes (each with one image box), accepts the image box N-SET, the print N-ACTION
and the N-DELETE, and prints one line per request to stdout for the test to check."""

from __future__ import annotations

import sys

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicFilmBox,
    BasicGrayscaleImageBox,
    BasicGrayscalePrintManagementMeta,
)


def log(event: evt.Event, name: str) -> None:
    req = event.request
    uid = getattr(req, "RequestedSOPClassUID", None) or getattr(req, "AffectedSOPClassUID", None)
    print(f"{name} {uid}", flush=True)


def handle_get(event: evt.Event) -> tuple[int, Dataset]:
    log(event, "N-GET")
    ds = Dataset()
    ds.PrinterStatus = "NORMAL"
    ds.PrinterStatusInfo = "NORMAL"
    return 0x0000, ds


def handle_create(event: evt.Event) -> tuple[int, Dataset]:
    log(event, "N-CREATE")
    req = event.request
    ds = Dataset()
    ds.update(event.attribute_list)
    ds.SOPClassUID = req.AffectedSOPClassUID
    ds.SOPInstanceUID = req.AffectedSOPInstanceUID or generate_uid()
    if req.AffectedSOPClassUID == BasicFilmBox:
        box = Dataset()
        box.ReferencedSOPClassUID = BasicGrayscaleImageBox
        box.ReferencedSOPInstanceUID = generate_uid()
        ds.ReferencedImageBoxSequence = [box]
    return 0x0000, ds


def handle_set(event: evt.Event) -> tuple[int, Dataset]:
    log(event, "N-SET")
    return 0x0000, event.attribute_list


def handle_action(event: evt.Event) -> tuple[int, None]:
    log(event, "N-ACTION")
    return 0x0000, None


def handle_delete(event: evt.Event) -> int:
    log(event, "N-DELETE")
    return 0x0000


if __name__ == "__main__":
    ae = AE(ae_title="PRINT_SCP")
    ae.add_supported_context(BasicGrayscalePrintManagementMeta)
    handlers = [
        (evt.EVT_N_GET, handle_get),
        (evt.EVT_N_CREATE, handle_create),
        (evt.EVT_N_SET, handle_set),
        (evt.EVT_N_ACTION, handle_action),
        (evt.EVT_N_DELETE, handle_delete),
    ]
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=handlers)
