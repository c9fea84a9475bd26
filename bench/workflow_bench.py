"""Benchmark scenario ``w``: Modality Worklist under concurrent load.

1000 worklist items (PS3.4 K) are written once as ``.wl`` files in the folder layout DCMTK's
``wlmscpfs`` reads (``<data>/<called AE title>/*.wl`` and a ``lockfile``); ``dicomnet qrscp
--worklist`` serves the same folder. Ten DCMTK ``findscu -W`` processes start at once, each
asking for the steps of one day's station and its modality (1/10 of the items, return keys in the
Scheduled Procedure Step Sequence); the time is from the first start to the last exit, so it
includes each server's matching under concurrency. Every client's answer count is checked.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

CALLED = "WORKLIST"
STATIONS = 10


def write_items(folder: Path, n: int) -> None:
    """``n`` worklist items, spread over ``STATIONS`` stations and two modalities."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.sequence import Sequence

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").touch()  # wlmscpfs wants one in the AE title's folder
    for i in range(n):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = f"PATIENT^{i:05d}"
        ds.PatientID = f"P{i:05d}"
        ds.AccessionNumber = f"A{i:05d}"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "MF"[i % 2]
        ds.ReferringPhysicianName = "REF^DOCTOR"
        ds.RequestedProcedureID = f"RP{i}"
        ds.RequestedProcedureDescription = "ROUTINE EXAM"
        ds.StudyInstanceUID = f"2.25.{10**9 + i}"
        ds.ReferencedStudySequence = Sequence([])  # type 2 (PS3.4 K.6-1): present, empty
        ds.ReferencedPatientSequence = Sequence([])
        step = Dataset()
        step.Modality = "CT" if i % STATIONS % 2 == 0 else "MR"  # even stations are CTs
        step.ScheduledStationAETitle = f"STATION{i % STATIONS}"
        step.ScheduledProcedureStepStartDate = "20240105"
        step.ScheduledProcedureStepStartTime = f"{8 + i % 10:02d}0000"
        step.ScheduledProcedureStepID = f"SPS{i}"
        step.ScheduledProcedureStepDescription = "ROUTINE"
        step.ScheduledPerformingPhysicianName = "TECH^ONE"
        code = Dataset()
        code.CodeValue = "P1"
        code.CodingSchemeDesignator = "99DICOMNET"
        code.CodeMeaning = "protocol"
        step.ScheduledProtocolCodeSequence = Sequence([code])
        ds.ScheduledProcedureStepSequence = Sequence([step])
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, True
        write_dataset(buf, ds)
        (folder / f"item{i:05d}.wl").write_bytes(buf.getvalue())


def expected(n: int, station: int) -> int:
    """The items of one station (each client asks for its station's modality)."""
    return sum(1 for i in range(n) if i % STATIONS == station)


def concurrent_queries(findscu: str, port: int, n: int, out: Path, env: dict[str, str]) -> tuple[float, bool, str]:
    """Ten findscu -W at once; (seconds, every answer complete, note)."""
    procs = []
    t0 = time.perf_counter()
    for station in range(STATIONS):
        folder = out / f"c{station}"
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        argv = [findscu, "-W", "-X", "-od", str(folder), "-aec", CALLED,
                "-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
                "-k", f"(0040,0100)[0].Modality={'CT' if station % 2 == 0 else 'MR'}",
                "-k", f"(0040,0100)[0].ScheduledStationAETitle=STATION{station}",
                "-k", "(0040,0100)[0].ScheduledProcedureStepStartDate=20240105",
                "-k", "(0040,0100)[0].ScheduledProcedureStepStartTime",
                "-k", "(0040,0100)[0].ScheduledProcedureStepID",
                "127.0.0.1", str(port)]  # fmt: skip
        procs.append((station, folder, subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                                        stderr=subprocess.DEVNULL)))  # fmt: skip
    ok, notes = True, []
    for station, folder, proc in procs:
        rc = proc.wait(timeout=300)
        got = len(list(folder.iterdir()))
        if rc != 0 or got != expected(n, station):
            ok = False
            notes.append(f"station {station}: rc={rc} got {got}/{expected(n, station)}")
    return time.perf_counter() - t0, ok, "; ".join(notes[:3])
