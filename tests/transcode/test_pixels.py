"""Conversions that decode or encode pixel data (pydicom's backends: the dicomnet[codecs] extra).

Real files from pydicom's test data in each compressed syntax are decompressed and compared,
pixel for pixel, with pydicom's own decoding of the same file; lossless encoders (RLE, JPEG-LS,
JPEG 2000) are checked both ways. The rules of PS3.3 C.7.6.1.1.5 (Lossy Image Compression stays
"01") and PS3.4 B.4.1 (the instance keeps its SOP Instance UID) are asserted on the way.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset

from dicomnet.datasource import DataSource
from dicomnet.dimse.dataset import decode_dataset
from dicomnet.services.sending import file_source
from dicomnet.transcode import CODECS_HINT, ConversionError, convert, inspect_file
from dicomnet.transcode import syntax as syntax_mod
from dicomnet.transcode.syntax import EXPLICIT_LE, IMPLICIT_LE, decoder_available

pytestmark = pytest.mark.skipif(
    not decoder_available("1.2.840.10008.1.2.4.90"), reason="dicomnet[codecs] not installed"
)

# (file in pydicom's test data, source syntax, lossy by definition)
FILES = [
    ("SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.4.50", True),  # YBR_FULL baseline
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "1.2.840.10008.1.2.4.50", True),  # YBR_FULL_422
    ("JPGExtended.dcm", "1.2.840.10008.1.2.4.51", True),
    ("SC_rgb_jpeg_gdcm.dcm", "1.2.840.10008.1.2.4.70", False),
    ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80", False),
    ("JPEGLSNearLossless_16.dcm", "1.2.840.10008.1.2.4.81", True),
    ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90", False),
    ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", False),
    ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5", False),
    ("SC_rgb_rle_2frame.dcm", "1.2.840.10008.1.2.5", False),
]


def _path(name: str) -> Path:
    p = get_testdata_file(name)
    assert isinstance(p, str), name
    return Path(p)


def _as_dataset(src: DataSource) -> Dataset:
    ds = decode_dataset(src.read(), src.transfer_syntax or "")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = src.transfer_syntax
    return ds


def _reference(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.mark.parametrize(("name", "ts", "lossy"), FILES)
@pytest.mark.parametrize("target", [EXPLICIT_LE, IMPLICIT_LE])
def test_decompression_matches_pydicom(name: str, ts: str, lossy: bool, target: str) -> None:
    info = inspect_file(str(_path(name)))
    assert info.transfer_syntax == ts
    out = convert(file_source(info), target)
    assert out.transfer_syntax == target and out.size % 2 == 0
    got = _as_dataset(out)
    ref = _reference(_path(name))
    assert got.SOPInstanceUID == ref.SOPInstanceUID  # the same instance (PS3.4 B.4.1)
    assert np.array_equal(got.pixel_array, ref.pixel_array)
    if lossy:
        assert got.LossyImageCompression == "01"  # PS3.3 C.7.6.1.1.5
    else:
        assert got.get("LossyImageCompression") == ref.get("LossyImageCompression")
    # everything but the pixel description is unchanged (private values in implicit VR have
    # no VR any more, PS3.5 6.2.2: compared in explicit VR only)
    skip = {0x7FE00010, 0x00280004, 0x00280006, 0x00282110, 0x00280008}

    def kept(ds: Dataset) -> dict[object, object]:
        return {e.tag: e.value for e in ds if e.tag not in skip
                and not (target == IMPLICIT_LE and e.tag.is_private)}  # fmt: skip

    assert kept(got) == kept(ref)


@pytest.mark.parametrize(
    "target", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"]
)
def test_lossless_compression_round_trip(target: str) -> None:
    if not syntax_mod.encoder_available(target):
        pytest.skip(f"no encoder for {target}")
    name = "MR_small.dcm"
    info = inspect_file(str(_path(name)))
    compressed = convert(file_source(info), target)
    assert compressed.transfer_syntax == target
    back = convert(compressed, EXPLICIT_LE)
    got = _as_dataset(back)
    assert np.array_equal(got.pixel_array, _reference(_path(name)).pixel_array)
    assert got.SOPInstanceUID == _reference(_path(name)).SOPInstanceUID
    assert got.get("LossyImageCompression") != "01"


def test_transcoding_lossy_to_lossless_keeps_the_lossy_flag() -> None:
    info = inspect_file(str(_path("SC_rgb_jpeg_dcmtk.dcm")))
    rle = convert(file_source(info), "1.2.840.10008.1.2.5")
    ds = _as_dataset(convert(rle, EXPLICIT_LE))
    assert ds.LossyImageCompression == "01"


def test_missing_codec_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syntax_mod, "decoder_available", lambda ts: False)
    import dicomnet.transcode.conversion as convert_mod

    monkeypatch.setattr(convert_mod, "decoder_available", lambda ts: False)
    info = inspect_file(str(_path("MR_small_jp2klossless.dcm")))
    with pytest.raises(ConversionError) as err:
        convert(file_source(info), EXPLICIT_LE)
    assert CODECS_HINT in str(err.value) and "\n" not in str(err.value)
    assert "dicomnet[codecs]" in str(err.value)


def test_corrupt_compressed_data_is_a_conversion_error() -> None:
    ds = _reference(_path("SC_rgb_jpeg_dcmtk.dcm"))
    start = ds.PixelData.index(b"\xff\xd8")
    ds.PixelData = ds.PixelData[: start + 40] + bytes(len(ds.PixelData) - start - 40)
    data = DataSource.from_dataset(ds, ds.file_meta.TransferSyntaxUID).read()
    with pytest.raises(ConversionError, match="cannot decode"):
        convert(DataSource.from_bytes(data, ds.file_meta.TransferSyntaxUID), EXPLICIT_LE)


def test_no_pixel_data_in_a_compressed_syntax_is_re_encoded() -> None:
    """A data set without Pixel Data in an encapsulated syntax (allowed; e.g. a report stored
    by a modality that compresses everything) converts without any codec."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "A^B"
    jpeg = "1.2.840.10008.1.2.4.50"
    src = DataSource.from_bytes(DataSource.from_dataset(ds, EXPLICIT_LE).read(), jpeg)
    out = convert(src, IMPLICIT_LE)
    assert decode_dataset(out.read(), IMPLICIT_LE).PatientName == "A^B"
