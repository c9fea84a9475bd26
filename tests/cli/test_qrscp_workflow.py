"""``dicomnet qrscp``'s workflow services, end to end with real processes: the Instance
Availability Notification of a study stored by DCMTK's storescu reaches an SCP (PS3.4 R)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.data import get_testdata_file

from dicomnet import evt
from dicomnet.ae import AE
from dicomnet.archive.ian import IAN_SOP_CLASS
from tests.cli.conftest import Server
from tests.conftest import require_dcmtk


def test_a_stored_study_is_announced(qrscp: Callable[..., Server], tmp_path: Path) -> None:
    require_dcmtk("storescu")
    received: list[Dataset] = []
    got = threading.Event()

    def on_create(event: evt.Event) -> tuple[int, Dataset]:
        received.append(event.attribute_list)
        got.set()
        return 0x0000, event.attribute_list

    ris = AE(ae_title="RIS")
    ris.add_supported_context(IAN_SOP_CLASS)
    server = ris.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_N_CREATE, on_create)])  # fmt: skip
    try:
        arc = qrscp(extra=["--ian", f"RIS=127.0.0.1:{server.address[1]}", "--ian-quiet", "0.2"])
        path = str(get_testdata_file("CT_small.dcm"))
        subprocess.run(["storescu", "-aec", arc.aet, "127.0.0.1", str(arc.port), path],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
        assert got.wait(20), "no Instance Availability Notification arrived"
    finally:
        server.shutdown()
    stored = dcmread(path, stop_before_pixels=True)
    [ds] = received
    assert ds.StudyInstanceUID == stored.StudyInstanceUID
    [series] = ds.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == stored.SeriesInstanceUID
    [ref] = series.ReferencedSOPSequence
    assert ref.ReferencedSOPInstanceUID == stored.SOPInstanceUID
    assert ref.InstanceAvailability == "ONLINE" and ref.RetrieveAETitle == arc.aet
