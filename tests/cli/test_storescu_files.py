"""storescu's fast Part 10 scan, directory walking and context planning (no network)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomnet.cli.storescu import (
    MAX_CONTEXTS,
    contexts_for,
    iter_paths,
    plan,
    read_part10_info,
)
from dicomnet.transcode import InstanceFile
from tests.cli.helpers import CT, MR, make_dataset, write_part10


def test_read_part10_info_matches_pydicom(tmp_path: Path) -> None:
    ds = make_dataset(sop_class=MR)
    p = write_part10(ds, tmp_path / "a.dcm", ImplicitVRLittleEndian)
    info = read_part10_info(str(p))
    assert info is not None
    assert info.sop_class_uid == MR
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.transfer_syntax == ImplicitVRLittleEndian
    assert info.size == p.stat().st_size
    # the data set starts right after the meta group: what pydicom reads from there matches
    raw = p.read_bytes()[info.dataset_offset :]
    assert raw[:4] == b"\x08\x00\x05\x00" or raw[:2] == b"\x08\x00"


def test_read_part10_info_rejects_non_dicom(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("hello " * 100)
    assert read_part10_info(str(tmp_path / "t.txt")) is None
    (tmp_path / "short").write_bytes(b"")
    assert read_part10_info(str(tmp_path / "short")) is None
    # DICM magic but garbage meta: not sendable
    (tmp_path / "bad").write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    assert read_part10_info(str(tmp_path / "bad")) is None
    # meta without SOP class UID: the data set's (0008,0016) is what is sent (PS3.4 B.2.1)
    ds = make_dataset()
    ok = write_part10(ds, tmp_path / "ok.dcm")
    data = bytearray(ok.read_bytes())
    i = data.index(b"\x02\x00\x02\x00UI")
    data[i + 2] = 0x09  # (0002,0009): not a known element, SOP class now missing
    (tmp_path / "nosop").write_bytes(bytes(data))
    info = read_part10_info(str(tmp_path / "nosop"))
    assert info is not None and info.sop_class_uid == ds.SOPClassUID
    # neither the meta nor the data set has one: not sendable
    del ds.SOPClassUID
    ds.save_as(tmp_path / "nosop2", enforce_file_format=True)
    assert read_part10_info(str(tmp_path / "nosop2")) is None


def test_iter_paths(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b", "d/a", "d/sub/c", "e"):
        (tmp_path / name).write_bytes(b"x")
    flat = list(iter_paths([str(tmp_path / "d"), str(tmp_path / "e")], recursive=False))
    assert flat == [str(tmp_path / "d" / "a"), str(tmp_path / "d" / "b"), str(tmp_path / "e")]
    deep = list(iter_paths([str(tmp_path / "d")], recursive=True))
    assert deep == [str(tmp_path / "d" / n) for n in ("a", "b", "sub/c")]


def _info(sop: str, ts: str) -> InstanceFile:
    return InstanceFile("/x", 1, 0, ts, sop, generate_uid(), True, ())


def test_contexts_for_one_context_per_syntax() -> None:
    """Each syntax in a context of its own (so the peer can accept each separately): the
    stored ones, then Explicit and Implicit VR Little Endian, without repeats."""
    jpeg = "1.2.840.10008.1.2.4.50"
    assert contexts_for(CT, [jpeg, jpeg]) == [
        (CT, (jpeg,)), (CT, (ExplicitVRLittleEndian,)), (CT, (ImplicitVRLittleEndian,))
    ]
    assert contexts_for(CT, [ExplicitVRLittleEndian]) == [
        (CT, (ExplicitVRLittleEndian,)),
        (CT, (ImplicitVRLittleEndian,)),
    ]
    both = contexts_for(CT, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    assert sorted(both) == sorted([(CT, (ExplicitVRLittleEndian,)), (CT, (ImplicitVRLittleEndian,))])
    # --propose-rle: RLE first; -xi: Implicit VR Little Endian only
    rle = "1.2.840.10008.1.2.5"
    assert contexts_for(CT, [jpeg], preferred=[rle])[:2] == [(CT, (rle,)), (CT, (jpeg,))]
    assert contexts_for(CT, [], uncompressed=[ImplicitVRLittleEndian]) == [
        (CT, (ImplicitVRLittleEndian,))
    ]


def test_plan_groups_and_splits_at_128_contexts() -> None:
    infos = [_info(CT, ExplicitVRLittleEndian), _info(MR, ImplicitVRLittleEndian)]
    batches = plan(infos)
    assert len(batches) == 1
    assert len(batches[0].contexts) == 4 and len(batches[0].files) == 2
    # 100 SOP classes x 2 contexts = 200 contexts: two associations, none above the limit
    many = [_info(f"1.2.3.{i}", ExplicitVRLittleEndian) for i in range(100)]
    batches = plan(many)
    assert len(batches) == 2
    assert all(len(b.contexts) <= MAX_CONTEXTS for b in batches)
    assert sum(len(b.files) for b in batches) == 100
    # every file's SOP class is proposed on the association that sends it
    for b in batches:
        proposed = {sop for sop, _ in b.contexts}
        assert all(f.sop_class_uid in proposed for f in b.files)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300))
def test_read_part10_info_never_raises_on_garbage(tmp_path: Path, body: bytes) -> None:
    """Arbitrary meta bytes after a valid preamble: None or a complete answer, never an error."""
    p = tmp_path / "fuzz"
    p.write_bytes(bytes(128) + b"DICM" + body)
    info = read_part10_info(str(p))
    assert info is None or (info.sop_class_uid and info.sop_instance_uid and info.transfer_syntax)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=400))
def test_read_part10_info_truncated_files(tmp_path: Path, cut: int) -> None:
    full = write_part10(make_dataset(), tmp_path / "full.dcm").read_bytes()
    p = tmp_path / "cut"
    p.write_bytes(full[:cut])
    info = read_part10_info(str(p))
    if info is not None:  # only when the whole meta group is there
        assert info.dataset_offset <= cut
