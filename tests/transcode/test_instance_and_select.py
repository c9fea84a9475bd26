"""What a file to send is (PS3.10 7.1, PS3.4 B.2.1), and which contexts carry it (PS3.8 9.3.2.2)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from dicomnet.dimse.dataset import encode_dataset
from dicomnet.transcode import UnsendableFile, inspect_file, propose_syntaxes, rank_targets
from dicomnet.transcode.instance import guess_syntax, scan_uids
from dicomnet.transcode.select import context_plan
from dicomnet.transcode.syntax import (
    DEFLATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    Kind,
    conversion_kind,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
J2K = "1.2.840.10008.1.2.4.90"
JPEG = "1.2.840.10008.1.2.4.50"
RLE = "1.2.840.10008.1.2.5"


def _ds(**kw: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "A^B"
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _write(path: Path, ds: Dataset, ts: str, meta_uid: str | None = None,
           meta: bool = True) -> Path:  # fmt: skip
    body = encode_dataset(ds, ts)
    if not meta:
        path.write_bytes(body)
        return path
    from dicomnet.archive.store import encode_file_meta

    meta_bytes = encode_file_meta(str(ds.SOPClassUID), meta_uid or str(ds.SOPInstanceUID), ts)
    path.write_bytes(meta_bytes + body)
    return path


@pytest.mark.parametrize("ts", [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED])
def test_uids_come_from_the_data_set(tmp_path: Path, ts: str) -> None:
    ds = _ds()
    p = _write(tmp_path / "f.dcm", ds, ts, meta_uid="1.2.3.999")
    info = inspect_file(str(p))
    assert info.transfer_syntax == ts and info.has_meta
    assert info.sop_class_uid == CT
    assert info.sop_instance_uid == ds.SOPInstanceUID  # not the meta header's 1.2.3.999
    assert len(info.warnings) == 1 and "1.2.3.999" in info.warnings[0]


@pytest.mark.parametrize("ts", [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE])
def test_files_without_meta_get_their_syntax_inferred(tmp_path: Path, ts: str) -> None:
    ds = _ds()
    ds.add_new(0x00080005, "CS", "ISO_IR 100")
    p = _write(tmp_path / "raw", ds, ts, meta=False)
    info = inspect_file(str(p))
    assert not info.has_meta and info.dataset_offset == 0
    assert info.transfer_syntax == ts
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert any("inferred" in w for w in info.warnings)


def test_uids_after_a_long_first_element(tmp_path: Path) -> None:
    """UIDs further in than the first read (a huge sequence before them): still found."""
    ds = _ds()
    ds.add_new(0x00080006, "SQ", [Dataset() for _ in range(1)])
    ds[0x00080006].value[0].add_new(0x00080100, "SH", "X")
    ds.add_new(0x00080008, "CS", ["ORIGINAL"] * 40000)  # 360 KB: beyond the first reads
    p = _write(tmp_path / "long.dcm", ds, EXPLICIT_LE)
    info = inspect_file(str(p))
    assert info.sop_instance_uid == ds.SOPInstanceUID


def test_unsendable_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "text").write_text("not DICOM at all, just a note\n" * 20)
    with pytest.raises(UnsendableFile) as err:
        inspect_file(str(tmp_path / "text"))
    assert err.value.skip
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(UnsendableFile):
        inspect_file(str(tmp_path / "empty"))
    no_class = _ds()
    del no_class.SOPClassUID
    fm_ds = _ds()
    p = _write(tmp_path / "nocls.dcm", fm_ds, EXPLICIT_LE)
    p.write_bytes(p.read_bytes()[: -len(encode_dataset(fm_ds, EXPLICIT_LE))]
                  + encode_dataset(no_class, EXPLICIT_LE))  # fmt: skip
    with pytest.raises(UnsendableFile, match="SOP Class UID") as err:
        inspect_file(str(p))
    assert not err.value.skip
    # a DICOMDIR is a file-set directory, not an instance to store
    dicomdir = Dataset()
    dicomdir.file_meta = FileMetaDataset()
    dicomdir.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dicomdir.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    dicomdir.file_meta.TransferSyntaxUID = EXPLICIT_LE
    dicomdir.FileSetID = "X"
    dicomdir.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    with pytest.raises(UnsendableFile, match="DICOMDIR") as err:
        inspect_file(str(tmp_path / "DICOMDIR"))
    assert err.value.skip


def test_scan_and_guess_on_raw_bytes() -> None:
    ds = _ds()
    for ts in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE):
        data = encode_dataset(ds, ts) if ts != EXPLICIT_BE else None
        if data is None:
            from dicomnet.datasource import DataSource
            from dicomnet.transcode import convert

            data = convert(DataSource.from_bytes(encode_dataset(ds, EXPLICIT_LE), EXPLICIT_LE),
                           EXPLICIT_BE).read()  # fmt: skip
        assert guess_syntax(data) == ts
        assert scan_uids(data, ts)[0x00080018] == ds.SOPInstanceUID
    deflated = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = deflated.compress(encode_dataset(ds, EXPLICIT_LE)) + deflated.flush()
    assert scan_uids(z, DEFLATED)[0x00080016] == CT
    assert guess_syntax(b"%PDF-1.4 whatever") is None


def test_conversion_kinds() -> None:
    assert conversion_kind(JPEG, JPEG) == Kind.AS_IS
    assert conversion_kind(EXPLICIT_BE, IMPLICIT_LE) == Kind.NATIVE
    assert conversion_kind(J2K, EXPLICIT_LE) == Kind.DECOMPRESS
    assert conversion_kind(EXPLICIT_LE, RLE) == Kind.COMPRESS
    assert conversion_kind(JPEG, RLE) == Kind.TRANSCODE


def test_rank_targets_order() -> None:
    """Own syntax > lossless re-encoding > decompression > lossless compression; lossy
    targets only when asked for."""
    assert rank_targets(J2K, [EXPLICIT_LE, J2K, IMPLICIT_LE]) == [J2K, EXPLICIT_LE, IMPLICIT_LE]
    assert rank_targets(IMPLICIT_LE, [EXPLICIT_BE, EXPLICIT_LE]) == [EXPLICIT_LE, EXPLICIT_BE]
    assert rank_targets(EXPLICIT_LE, [JPEG]) == []  # never into a lossy syntax by itself
    assert rank_targets(J2K, [EXPLICIT_LE, RLE])[0] == EXPLICIT_LE
    # asked for (storescu -xr): uncompressed data is compressed when the peer accepted it
    ranked = rank_targets(EXPLICIT_LE, [EXPLICIT_LE, RLE], preferred=[RLE])
    assert ranked[0] == RLE
    # ... but compressed data the peer accepted as it is stays as it is
    assert rank_targets(JPEG, [JPEG, RLE], preferred=[RLE])[0] == JPEG


def test_propose_one_context_per_syntax() -> None:
    assert propose_syntaxes([J2K, J2K]) == [J2K, EXPLICIT_LE, IMPLICIT_LE]
    assert propose_syntaxes([], preferred=[RLE], uncompressed=[IMPLICIT_LE]) == [RLE, IMPLICIT_LE]


def test_context_plan_fits_in_128() -> None:
    pairs = [(f"1.2.3.{i}", J2K) for i in range(30)]
    full = context_plan(pairs)
    assert len(full) == 90 and all(len(ts) == 1 for _, ts in full)
    many = [(f"1.2.3.{i}", J2K) for i in range(60)]  # 180 separate contexts would not fit
    merged = context_plan(many)
    assert len(merged) == 120
    assert (many[0][0], (EXPLICIT_LE, IMPLICIT_LE)) in merged and (many[0][0], (J2K,)) in merged
    huge = [(f"1.2.3.{i}", J2K) for i in range(200)]
    assert len(context_plan(huge)) == 128
