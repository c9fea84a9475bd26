"""``dicomnet.dsutils``, pynetdicom's data set helpers, side by side with pynetdicom's own.

* ``encode``/``decode`` for the four uncompressed transfer syntaxes (PS3.5 section 10): the
  same bytes as pynetdicom's, and each one's output decodes with the other to the same data
  set; a combination that is no DICOM transfer syntax is refused.
* ``pretty_dataset``: the same lines as pynetdicom's (the ``dcmdump`` layout) for text,
  numbers, empty values and nested sequences; a binary value shows its length instead of
  its bytes (a design difference: a Pixel Data element would be one line of megabytes).
"""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.dataset import Dataset

from dicomnet import dsutils

COMBINATIONS = [(True, True, False), (False, True, False), (False, True, True),
                (False, False, False)]  # fmt: skip


def _dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.PatientID = "12345"
    ds.Rows = 512
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.add_new(0x00081150, "UI", "")
    ds.ReferencedSOPSequence = [Dataset(), Dataset()]
    ds.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedSOPSequence[1].ReferencedSOPInstanceUID = "1.2.3.5"
    ds.ReferencedSOPSequence[1].ReferencedStudySequence = [Dataset()]
    ds.ReferencedSOPSequence[1].ReferencedStudySequence[0].StudyID = "S1"
    ds.ReferencedImageSequence = []
    return ds


@pytest.mark.parametrize(("implicit", "little", "deflated"), COMBINATIONS)
def test_encode_decode_agree_with_pynetdicom(implicit: bool, little: bool, deflated: bool) -> None:
    p_dsutils = pytest.importorskip("pynetdicom.dsutils")
    ds = _dataset()
    ours = dsutils.encode(ds, implicit, little, deflated)
    theirs = p_dsutils.encode(ds, implicit, little, deflated)
    assert ours is not None and ours == theirs
    back = dsutils.decode(BytesIO(theirs), implicit, little, deflated)
    assert back == p_dsutils.decode(BytesIO(ours), implicit, little, deflated) == ds
    assert dsutils.decode(ours, implicit, little, deflated) == ds  # plain bytes too


def test_no_such_transfer_syntax_is_refused() -> None:
    with pytest.raises(ValueError):
        dsutils.encode(_dataset(), True, False)  # implicit VR big endian: not in PS3.5
    with pytest.raises(ValueError):
        dsutils.decode(b"", True, True, True)


def test_an_unencodable_data_set_gives_none() -> None:
    ds = Dataset()
    ds.Rows = "not a number"  # US
    assert dsutils.encode(ds, False, True) is None


def test_pretty_dataset_lines_are_pynetdicoms() -> None:
    p_dsutils = pytest.importorskip("pynetdicom.dsutils")
    ds = _dataset()
    del ds.ReferencedSOPSequence[1].ReferencedStudySequence  # see the next test
    assert dsutils.pretty_dataset(ds) == p_dsutils.pretty_dataset(ds)
    # indented once: every line one more indent (pynetdicom 3.0.4 leaves a sequence's own
    # line at the margin, as in the next test)
    once = dsutils.pretty_dataset(ds, 1, "\t")
    assert once == ["\t" + line for line in dsutils.pretty_dataset(ds, 0, "\t")]
    assert [dsutils.pretty_element(e) for e in ds] == [p_dsutils.pretty_element(e) for e in ds]


def test_pretty_dataset_indents_a_sequence_inside_an_item() -> None:
    """A sequence inside an item is indented with the item's other elements (pynetdicom
    3.0.4 prints that sequence's own line at the left margin, its items indented)."""
    lines = dsutils.pretty_dataset(_dataset())
    start = lines.index("  (Sequence item #2)")
    assert lines[start + 1].startswith("    (0008,1110) SQ (Sequence with 1 item)")
    assert lines[start + 2] == "      (Sequence item #1)"
    assert lines[start + 3].startswith("        (0020,0010) SH [S1]")
    assert lines[start + 4].startswith("    (0008,1155) UI [1.2.3.5]")


def test_pretty_binary_values_show_their_length() -> None:
    ds = Dataset()
    ds.add_new(0x7FE00010, "OW", b"\0" * 1000)
    (line,) = dsutils.pretty_dataset(ds)
    assert line.startswith("(7FE0,0010) OW (1000 bytes)") and line.endswith("# 1 PixelData")
