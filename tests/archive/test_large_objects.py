"""Large data sets over real sockets: the sending side's ``sendfile`` path (FileRegion
fragments) and the receiving side's spool adoption (a spool file written behind its Part 10
header and renamed into place instead of copied), for both DirectoryStore (storescp) and the
archive (qrscp). Each stored file is compared byte for byte with what the ordinary copy path
writes, so the fast paths cannot drift from it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet import AE
from dicomnet import events as evt
from dicomnet.archive.scp import Archive, DirectoryStore, archive_ae, part10_spool_prefix
from dicomnet.archive.store import encode_file_meta
from dicomnet.datasource import DataSource, FileRegion
from dicomnet.dimse.fragment import FILE_REGION_MIN, fragment
from dicomnet.server import inline

SC = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


def _write_instance(path: Path, pixel_bytes: int) -> tuple[str, bytes]:
    """A Part 10 file with ``pixel_bytes`` of OB pixel data; returns (SOP UID, data set)."""
    ds = Dataset()
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BIG"
    ds.PatientName = "Big^Object"
    ds.Modality = "OT"
    ds.PixelData = os.urandom(1 << 16) * (pixel_bytes >> 16)
    ds["PixelData"].VR = "OB"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    offset = DataSource.from_file(str(path)).offset
    return str(ds.SOPInstanceUID), raw[offset:]


def test_fragment_file_regions_carry_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    _, data = _write_instance(path, 3 << 20)
    source = DataSource.from_file(str(path))
    limit = (1 << 20) + 6
    plain = [b"".join(bytes(c) for c in pdu) for pdu in fragment(1, b"\0" * 12, source, limit)]
    regions: list[bytes] = []
    seen_region = False
    for pdu in fragment(1, b"\0" * 12, source, limit, file_regions=True):
        parts = []
        for c in pdu:
            if isinstance(c, FileRegion):
                seen_region = True
                parts.append(c.tobytes())
            else:
                parts.append(bytes(c))
        regions.append(b"".join(parts))
    assert seen_region
    assert regions == plain
    assert b"".join(p[12:] for p in plain[1:]) == data


def test_small_pdus_never_use_file_regions(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    _write_instance(path, 1 << 20)
    source = DataSource.from_file(str(path))
    limit = FILE_REGION_MIN // 2
    for pdu in fragment(1, b"\0" * 12, source, limit, file_regions=True):
        assert not any(isinstance(c, FileRegion) for c in pdu)


def test_spool_prefix_only_for_valid_c_store(tmp_path: Path) -> None:
    from dicomnet.dimse.commands import encode_command

    class Assoc:  # the ContextView a spool prefix reads
        calling_ae_title = "SENDER"

        @staticmethod
        def transfer_syntax_of(cid: int) -> str | None:
            return ExplicitVRLittleEndian if cid == 1 else None

    uid = generate_uid()
    store_rq = encode_command(
        {0x0002: SC, 0x0100: 0x0001, 0x0110: 1, 0x0700: 0, 0x0800: 0, 0x1000: uid}
    )
    assert part10_spool_prefix(Assoc(), 1, store_rq) == encode_file_meta(
        SC, uid, ExplicitVRLittleEndian, source_ae_title="SENDER"
    )
    find_rq = encode_command({0x0002: SC, 0x0100: 0x0020, 0x0110: 1, 0x0700: 0, 0x0800: 0})
    assert part10_spool_prefix(Assoc(), 1, find_rq) == b""
    bad = encode_command(
        {0x0002: SC, 0x0100: 0x0001, 0x0110: 1, 0x0700: 0, 0x0800: 0, 0x1000: "1.02.x"}
    )
    assert part10_spool_prefix(Assoc(), 1, bad) == b""
    assert part10_spool_prefix(Assoc(), 1, b"garbage") == b""
    assert part10_spool_prefix(Assoc(), 3, store_rq) == b""  # no such context


def _serve(ae: AE, handler: Any) -> Any:
    return ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, inline(handler))]
    )


def _send(port: int, files: list[Path]) -> list[int]:
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(SC, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="ANY")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(str(f)).Status) for f in files]
    finally:
        assoc.release()


@pytest.mark.parametrize("adopt", [True, False])
def test_storescp_path_large_object_identical(tmp_path: Path, adopt: bool) -> None:
    """9 MiB (above the 8 MiB spool threshold) and 2 MiB (kept in memory) objects, sent with
    1 MiB PDUs (sendfile), arrive as the same Part 10 file whether adopted or copied."""
    src = tmp_path / "src"
    src.mkdir()
    big, small = src / "big.dcm", src / "small.dcm"
    big_uid, big_data = _write_instance(big, 9 << 20)
    small_uid, small_data = _write_instance(small, 2 << 20)
    store = DirectoryStore(tmp_path / "out")
    ae = AE(ae_title="ANY")
    ae.add_supported_context(SC, [ExplicitVRLittleEndian])
    ae.maximum_pdu_size = 1 << 20
    ae.spool_dir = store.files.tmp_dir
    if adopt:
        ae.spool_prefix = part10_spool_prefix
    copied: list[str] = []
    write_part10 = store.files.write_part10

    def counting(pending: Any, sop_class: str, sop_instance: str, *a: Any, **k: Any) -> None:
        copied.append(sop_instance)
        write_part10(pending, sop_class, sop_instance, *a, **k)

    store.files.write_part10 = counting  # type: ignore[method-assign,assignment]
    server = _serve(ae, store.handle_store)
    try:
        assert _send(server.address[1], [big, small]) == [0, 0]
    finally:
        server.shutdown()
    # the spooled (big) one is renamed into place when adopted; the in-memory one is copied
    assert copied == ([small_uid] if adopt else [big_uid, small_uid])
    for uid, data in ((big_uid, big_data), (small_uid, small_data)):
        out = Path(store.path_for(uid)).read_bytes()
        meta = encode_file_meta(SC, uid, ExplicitVRLittleEndian, source_ae_title="SENDER")
        assert out == meta + data
        mode = stat.S_IMODE(os.stat(store.path_for(uid)).st_mode)
        assert mode == 0o644 & ~_umask()
    assert os.listdir(store.files.tmp_dir) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_archive_adopts_large_spool_and_indexes_it(tmp_path: Path) -> None:
    src = tmp_path / "big.dcm"
    uid, data = _write_instance(src, 9 << 20)
    archive = Archive(tmp_path / "arc")
    try:
        ae = archive_ae("ANY")
        ae.maximum_pdu_size = 1 << 20
        ae.spool_dir = archive.files.tmp_dir
        ae.spool_prefix = part10_spool_prefix
        server = _serve(ae, archive.handle_store)
        try:
            assert _send(server.address[1], [src]) == [0]
        finally:
            server.shutdown()
        item = archive.index.get_instance(uid)
        assert item is not None
        stored = Path(item.path)
        assert stored.read_bytes().endswith(data)
        assert dcmread(stored).PatientID == "BIG"
        assert os.listdir(archive.files.tmp_dir) == []
    finally:
        archive.close()


def test_file_shrinking_during_sendfile_drops_the_connection(tmp_path: Path) -> None:
    """A FileRegion whose file is truncated after the PDU header was queued cannot be sent
    whole: the association is dropped, never padded or desynchronised."""
    src = tmp_path / "big.dcm"
    _write_instance(src, 6 << 20)  # above the size storescu/send_c_store read whole
    received: list[str] = []
    store = DirectoryStore(tmp_path / "out")

    def handler(event: Any) -> Any:
        received.append(event.request.AffectedSOPInstanceUID)
        return store.handle_store(event)

    ae = AE(ae_title="ANY")
    ae.add_supported_context(SC, [ExplicitVRLittleEndian])
    ae.maximum_pdu_size = 1 << 20
    server = _serve(ae, handler)
    try:
        import dicomnet.datasource as datasource_mod

        real = datasource_mod.DataSource.iter_regions

        def shrinking(self: Any, chunk_size: int) -> Any:
            for n, region in enumerate(real(self, chunk_size)):
                if n == 1:
                    os.truncate(self.path, region.offset + 10)
                yield region

        datasource_mod.DataSource.iter_regions = shrinking  # type: ignore[method-assign]
        try:
            client = AE(ae_title="SENDER")
            client.add_requested_context(SC, [ExplicitVRLittleEndian])
            assoc = client.associate("127.0.0.1", server.address[1], ae_title="ANY")
            assert assoc.is_established
            status = assoc.send_c_store(str(src))
            assert not assoc.is_established
            assert "ended after" in (assoc.failure_reason or "")
            assert getattr(status, "Status", None) is None
        finally:
            datasource_mod.DataSource.iter_regions = real  # type: ignore[method-assign]
    finally:
        server.shutdown()
    assert received == []


@pytest.mark.parametrize(
    ("instance", "ae"), [("1.2.3.4", "SENDER"), ("1.2.3.45", None), ("2.25.1", "A"), ("9", " X ")]
)
def test_file_meta_matches_pydicoms_writer(instance: str, ae: str | None) -> None:
    """encode_file_meta (cached head and tail) gives the bytes pydicom's own writer gives."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    from dicomnet.archive.store import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    for _ in range(2):  # the second call comes from the cache
        ours = encode_file_meta(SC, instance, ExplicitVRLittleEndian, source_ae_title=ae)
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = SC
        meta.MediaStorageSOPInstanceUID = instance
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        if ae and ae.strip():
            meta.SourceApplicationEntityTitle = ae.strip()
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_file_meta_info(fp, meta, enforce_standard=True)
        assert ours == bytes(128) + b"DICM" + fp.getvalue()
