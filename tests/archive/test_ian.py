"""Instance Availability Notification SCU (PS3.4 Annex R): a quiet study is announced once,
with every instance the index holds, to every destination; a destination that is down is
retried; a real N-CREATE reaches a real SCP."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydicom import Dataset

from dicomnet import evt
from dicomnet.ae import AE
from dicomnet.archive.ian import IAN_SOP_CLASS, IANotifier, availability_dataset
from tests.archive.conftest import SERIES, Archive


def _study_of(archive: Archive) -> tuple[str, Counter[str]]:
    """A study of the test archive and its instance count per series."""
    rows = archive.index.select(
        "SELECT st.study_uid, se.series_uid FROM instance i JOIN series se ON i.series_fk = se.pk "
        "JOIN study st ON se.study_fk = st.pk", [], [],
    )  # fmt: skip
    studies: dict[str, Counter[str]] = {}
    for study, series in rows:
        studies.setdefault(str(study), Counter())[str(series)] += 1
    # the study with the most series
    return max(studies.items(), key=lambda kv: (len(kv[1]), kv[0]))


def test_the_dataset_lists_every_instance_by_series(archive: Archive) -> None:
    study_uid, per_series = _study_of(archive)
    ds = availability_dataset(archive.index, study_uid, "ARCHIVE")
    assert ds.StudyInstanceUID == study_uid and ds.ReferencedPerformedProcedureStepSequence == []
    got = {s.SeriesInstanceUID: len(s.ReferencedSOPSequence) for s in ds.ReferencedSeriesSequence}
    assert got == dict(per_series) and set(got) <= set(SERIES)
    for series in ds.ReferencedSeriesSequence:
        for ref in series.ReferencedSOPSequence:
            assert ref.InstanceAvailability == "ONLINE" and ref.RetrieveAETitle == "ARCHIVE"
            assert ref.ReferencedSOPClassUID and ref.ReferencedSOPInstanceUID


def test_a_quiet_study_is_announced_once_per_destination(archive: Archive) -> None:
    study_uid, per_series = _study_of(archive)
    sent: list[tuple[str, Dataset]] = []
    done = threading.Event()

    def send(ds: Dataset, destination: tuple[str, str, int]) -> int:
        sent.append((destination[0], ds))
        if len(sent) == 2:
            done.set()
        return 0x0000

    notifier = IANotifier(archive.index, [("A", "h", 1), ("B", "h", 2)], quiet_seconds=0.05,
                          send=send)  # fmt: skip
    try:
        for _ in range(5):  # five stores of the same study: one notification
            notifier.stored(study_uid)
        assert done.wait(10)
        assert sorted(d for d, _ in sent) == ["A", "B"]
        total = sum(len(s.ReferencedSOPSequence) for s in sent[0][1].ReferencedSeriesSequence)
        assert total == sum(per_series.values())
        assert notifier.pending() == [] and notifier.sent == 2
    finally:
        notifier.close()
    assert len(sent) == 2


def test_a_destination_that_is_down_is_retried(archive: Archive) -> None:
    study_uid, _ = _study_of(archive)
    calls: Counter[str] = Counter()
    done = threading.Event()

    def send(ds: Dataset, destination: tuple[str, str, int]) -> int:
        calls[destination[0]] += 1
        if destination[0] == "DOWN" and calls["DOWN"] < 3:
            raise ConnectionError("refused")
        if destination[0] == "DOWN":
            done.set()
        return 0x0000

    notifier = IANotifier(archive.index, [("UP", "h", 1), ("DOWN", "h", 2)], quiet_seconds=0.01,
                          retry_delays=(0.02, 0.02, 0.02), send=send)  # fmt: skip
    try:
        notifier.stored(study_uid)
        assert done.wait(10)
    finally:
        notifier.close()
    assert calls == Counter({"UP": 1, "DOWN": 3})  # the one that answered is not asked again


def test_a_real_n_create_reaches_an_scp(archive: Archive) -> None:
    study_uid, per_series = _study_of(archive)
    received: list[Dataset] = []
    got = threading.Event()

    def on_create(event: evt.Event) -> tuple[int, Dataset]:
        received.append(event.attribute_list)
        got.set()
        return 0x0000, event.attribute_list

    scp = AE(ae_title="RIS")
    scp.add_supported_context(IAN_SOP_CLASS)
    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_N_CREATE, on_create)])  # fmt: skip
    notifier = IANotifier(archive.index, [("RIS", "127.0.0.1", server.address[1])],
                          ae_title="ARCHIVE", quiet_seconds=0.01)  # fmt: skip
    try:
        notifier.stored(study_uid)
        assert got.wait(15)
    finally:
        notifier.close()
        server.shutdown()
    [ds] = received
    assert ds.StudyInstanceUID == study_uid
    assert {s.SeriesInstanceUID for s in ds.ReferencedSeriesSequence} == set(per_series)


def test_a_study_another_node_is_still_receiving_waits(fresh_archive: Archive) -> None:
    """Two nodes on one index: this node stored the study's first instance and heard nothing
    more, another node stores a second one a moment later. The notification waits until the
    study is quiet on the other node too, and lists both instances."""
    from tests.archive.conftest import CT, IMPLICIT, encode

    def instance(n: int) -> bytes:
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT, f"1.2.840.99.7.1.{n}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.840.99.7", "1.2.840.99.7.1"
        ds.PatientID, ds.Modality = "IAN1", "CT"
        return encode(ds, IMPLICIT)

    index, files = fresh_archive.index, fresh_archive.store
    files.store(index, CT, "1.2.840.99.7.1.1", IMPLICIT, [instance(1)])
    sent: list[tuple[float, Dataset]] = []
    done = threading.Event()

    def send(ds: Dataset, destination: tuple[str, str, int]) -> int:
        sent.append((time.monotonic(), ds))
        done.set()
        return 0x0000

    quiet = 0.4
    notifier = IANotifier(index, [("RIS", "h", 1)], quiet_seconds=quiet, send=send)
    try:
        notifier.stored("1.2.840.99.7")  # this node's last store
        time.sleep(0.25)
        other = time.monotonic()  # the other node's store (not told to this notifier)
        files.store(index, CT, "1.2.840.99.7.1.2", IMPLICIT, [instance(2)])
        assert done.wait(10)
    finally:
        notifier.close()
    (at, ds), = sent  # fmt: skip
    assert at >= other + quiet - 0.05  # quiet since the other node's store, not since ours
    refs = [r.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence
            for r in s.ReferencedSOPSequence]  # fmt: skip
    assert sorted(refs) == ["1.2.840.99.7.1.1", "1.2.840.99.7.1.2"]


# --- one announcement per study across processes, and what is waiting survives a restart ------

_STUDY = "1.2.840.99.8"


def _instance(n: int) -> bytes:
    from tests.archive.conftest import CT, IMPLICIT, encode

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, f"{_STUDY}.1.{n}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = _STUDY, f"{_STUDY}.1"
    ds.PatientID, ds.Modality = "IAN2", "CT"
    return encode(ds, IMPLICIT)


def _store(archive: Archive, n: int) -> None:
    from tests.archive.conftest import CT, IMPLICIT

    archive.store.store(archive.index, CT, f"{_STUDY}.1.{n}", IMPLICIT, [_instance(n)])


def _state(archive: Archive, tmp_path: Path) -> str:
    """The shared state database: the PostgreSQL index's database, else a workflow file."""
    where = archive.index.path
    return where if where.startswith("postgresql") else str(tmp_path / "workflow.sqlite")


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.event = threading.Event()

    def send(self, ds: Dataset, destination: tuple[str, str, int]) -> int:
        refs = sorted(str(r.ReferencedSOPInstanceUID) for s in ds.ReferencedSeriesSequence
                      for r in s.ReferencedSOPSequence)  # fmt: skip
        self.sent.append((destination[0], refs))
        self.event.set()
        return 0x0000


def test_a_study_stored_through_two_nodes_is_announced_once(fresh_archive: Archive,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """Two notifiers (two nodes, or two --workers processes) on one index and one state
    database, each told of its own part of a study: one notification, listing both parts.
    Without the shared state each node announced the study (the behaviour before)."""
    state = _state(fresh_archive, tmp_path)
    recorders = [_Recorder(), _Recorder()]
    notifiers = [IANotifier(fresh_archive.index, [("RIS", "h", 1)], quiet_seconds=0.3,
                            send=r.send, state=state) for r in recorders]  # fmt: skip
    try:
        _store(fresh_archive, 1)
        notifiers[0].stored(_STUDY)
        _store(fresh_archive, 2)
        notifiers[1].stored(_STUDY)
        assert recorders[0].event.wait(10) or recorders[1].event.wait(10)
        time.sleep(0.8)  # the other notifier's deadline passes too
        assert all(n.pending() == [] for n in notifiers)
    finally:
        for n in notifiers:
            n.close()
    sent = recorders[0].sent + recorders[1].sent
    assert sent == [("RIS", [f"{_STUDY}.1.1", f"{_STUDY}.1.2"])]

    # an instance stored after the announcement: the study is announced again, once, with it
    again = [_Recorder(), _Recorder()]
    notifiers = [IANotifier(fresh_archive.index, [("RIS", "h", 1)], quiet_seconds=0.3,
                            send=r.send, state=state) for r in again]  # fmt: skip
    try:
        _store(fresh_archive, 3)
        notifiers[1].stored(_STUDY)
        notifiers[0].stored(_STUDY)  # e.g. a late duplicate
        assert again[0].event.wait(10) or again[1].event.wait(10)
        time.sleep(0.8)
    finally:
        for n in notifiers:
            n.close()
    assert again[0].sent + again[1].sent == [
        ("RIS", [f"{_STUDY}.1.1", f"{_STUDY}.1.2", f"{_STUDY}.1.3"])
    ]


def test_a_waiting_study_is_announced_after_a_restart(fresh_archive: Archive,
                                                      tmp_path: Path) -> None:  # fmt: skip
    state = _state(fresh_archive, tmp_path)
    first = _Recorder()
    notifier = IANotifier(fresh_archive.index, [("RIS", "h", 1)], quiet_seconds=30,
                          send=first.send, state=state)  # fmt: skip
    _store(fresh_archive, 1)
    notifier.stored(_STUDY)
    notifier.close()  # stopped (or killed) long before the study was due
    assert first.sent == []
    later = _Recorder()
    notifier = IANotifier(fresh_archive.index, [("RIS", "h", 1)], quiet_seconds=0.2,
                          send=later.send, state=state)  # fmt: skip
    try:
        assert notifier.pending() == [_STUDY]
        assert later.event.wait(10)
    finally:
        notifier.close()
    assert later.sent == [("RIS", [f"{_STUDY}.1.1"])]
    # announced: a third start has nothing waiting
    notifier = IANotifier(fresh_archive.index, [("RIS", "h", 1)], send=later.send, state=state)
    try:
        assert notifier.pending() == []
    finally:
        notifier.close()


# --- a destination not yet reached when the process stops is reached by the next one ---------


class _Flaky(_Recorder):
    """A sender to which the destinations in ``down`` do not answer."""

    def __init__(self, down: set[str]) -> None:
        super().__init__()
        self.down = down
        self.tried: list[str] = []

    def send(self, ds: Dataset, destination: tuple[str, str, int]) -> int:
        self.tried.append(destination[0])
        if destination[0] in self.down:
            raise ConnectionError("refused")
        return super().send(ds, destination)


_TWO = [("UP", "h", 1), ("DOWN", "h", 2)]


def _until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (checked every 10 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _down_at_first(archive: Archive, state: str) -> tuple[IANotifier, _Flaky]:
    """A notifier that announced the study's first instance: UP answered, DOWN did not, its
    retry due in ten minutes."""
    first = _Flaky({"DOWN"})
    notifier = IANotifier(archive.index, _TWO, quiet_seconds=0.05, retry_delays=(600.0,),
                          send=first.send, state=state)  # fmt: skip
    try:
        _store(archive, 1)
        notifier.stored(_STUDY)
        assert first.event.wait(10)
        assert _until(lambda: "DOWN" in first.tried)
    except BaseException:
        notifier.close()
        raise
    return notifier, first


def test_a_destination_down_when_the_process_stops_is_retried_after_a_restart(
    fresh_archive: Archive, tmp_path: Path
) -> None:
    """The claiming process reached one destination, not the other, and stopped before its
    retry was due. The next process (here an hour later) retries the other one only: without
    the delivery records the retry lived in the dead process's memory and was lost, and the
    study, already claimed, was never announced to that destination."""
    state = _state(fresh_archive, tmp_path)
    notifier, first = _down_at_first(fresh_archive, state)
    notifier.close()  # stopped (or killed) long before the retry was due
    assert sorted(first.tried) == ["DOWN", "UP"] and [d for d, _ in first.sent] == ["UP"]

    later = _Flaky(set())
    notifier = IANotifier(fresh_archive.index, _TWO, quiet_seconds=30, retry_delays=(600.0,),
                          send=later.send, state=state,
                          wall=lambda: time.time() + 3600)  # fmt: skip
    try:
        assert notifier.pending() == [_STUDY]
        assert later.event.wait(10)
    finally:
        notifier.close()
    assert later.sent == [("DOWN", [f"{_STUDY}.1.1"])]  # UP, which answered, is not asked again
    # reached: nothing is left for a third start
    notifier = IANotifier(fresh_archive.index, _TWO, send=later.send, state=state)
    try:
        assert notifier.pending() == []
    finally:
        notifier.close()


def test_a_claimed_announcement_is_sent_once_by_processes_resuming_it(
    fresh_archive: Archive, tmp_path: Path
) -> None:
    """A process claimed the study and died before sending anything. Two processes start and
    both find the announcement to finish: each destination hears it once (each attempt is
    taken in the database first), and the study is not claimed again."""
    from dicomnet.archive.ian_state import IANState, destination_key

    state = _state(fresh_archive, tmp_path)
    _store(fresh_archive, 1)
    latest = fresh_archive.index.last_stored(_STUDY)
    assert latest is not None
    dead = IANState(state)
    try:
        # due in a moment: both processes below load it before either sends
        keys = [destination_key(d) for d in _TWO]
        assert dead.claim(_STUDY, latest, keys, time.time() + 1.0)
    finally:
        dead.close()
    recorders = [_Flaky(set()), _Flaky(set())]
    notifiers = [IANotifier(fresh_archive.index, _TWO, quiet_seconds=30, send=r.send,
                            state=state) for r in recorders]  # fmt: skip
    try:
        assert all(n.pending() == [_STUDY] for n in notifiers)
        assert _until(lambda: not any(n.pending() for n in notifiers))
    finally:
        for n in notifiers:
            n.close()
    sent = sorted(recorders[0].sent + recorders[1].sent)
    assert sent == [("DOWN", [f"{_STUDY}.1.1"]), ("UP", [f"{_STUDY}.1.1"])]


def test_a_newer_announcement_replaces_the_retries_of_an_older_one(
    fresh_archive: Archive, tmp_path: Path
) -> None:
    """A destination was down for the first announcement; an instance stored since makes a
    new one, listing both instances. The restarted process sends that one to every
    destination, and not the stale first one to the destination that was down."""
    state = _state(fresh_archive, tmp_path)
    notifier, _ = _down_at_first(fresh_archive, state)
    try:
        _store(fresh_archive, 2)
        notifier.stored(_STUDY)  # waiting again
    finally:
        notifier.close()
    later = _Flaky(set())
    notifier = IANotifier(fresh_archive.index, _TWO, quiet_seconds=0.05, retry_delays=(600.0,),
                          send=later.send, state=state,
                          wall=lambda: time.time() + 3600)  # fmt: skip
    try:
        assert _until(lambda: not notifier.pending())
    finally:
        notifier.close()
    both = [f"{_STUDY}.1.1", f"{_STUDY}.1.2"]
    assert sorted(later.sent) == [("DOWN", both), ("UP", both)]
