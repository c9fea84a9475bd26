"""Fuzz target ``part10``: reading a file to send, and converting its data set (issue 11).

Theory of operation
-------------------
The input is the whole content of a file. It is written to a temporary file, then

* :func:`dicomnet.transcode.inspect_file` (what every sender uses: transfer syntax from the
  PS3.10 meta header or inferred, SOP Class/Instance UIDs of the data set) returns an
  ``InstanceFile`` or raises ``UnsendableFile``, nothing else; an answer is complete (UIDs and
  syntax not empty, data set offset within the file);
* :func:`dicomnet.services.sending.file_source` yields exactly the file bytes after that offset;
* :func:`dicomnet.transcode.check.structure_problem` never raises;
* for an uncompressed syntax, :func:`dicomnet.transcode.convert` into Explicit VR Little Endian
  either raises ``ConversionError`` or gives an even-length data set; once through Explicit VR
  Big Endian and back, another round trip gives the same bytes again (the byte order round
  trip is lossless, PS3.5 7.3; the first one normalizes what an input kept as it is may carry,
  e.g. non-zero reserved bytes, and may fail on damage below the top level, which the
  as-is check does not walk).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from dicomnet.services.sending import file_source
from dicomnet.transcode import ConversionError, UnsendableFile, convert, inspect_file
from dicomnet.transcode.check import structure_problem
from dicomnet.transcode.syntax import EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, NATIVE

__all__ = ["test_one_input"]

_DIR = tempfile.mkdtemp(prefix="dicomnet-fuzz-part10-")
atexit.register(shutil.rmtree, _DIR, True)
_PATH = os.path.join(_DIR, "input.dcm")


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        info = inspect_file(_PATH)
    except UnsendableFile:
        return
    if not (info.transfer_syntax and info.sop_class_uid and info.sop_instance_uid):
        raise AssertionError(f"incomplete answer {info}")
    if not 0 <= info.dataset_offset <= len(data) or info.size != len(data):
        raise AssertionError(f"offset {info.dataset_offset} / size {info.size} for {len(data)}")
    source = file_source(info)
    if source.read() != data[info.dataset_offset :]:
        raise AssertionError("file_source differs from the file content after the meta header")
    ts = info.transfer_syntax
    if ts not in NATIVE:
        return
    implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE
    structure_problem(source.getbuffer(), implicit, little)
    try:
        explicit = convert(source, EXPLICIT_LE)
    except ConversionError:
        return
    once = explicit.read()
    if len(once) % 2:
        raise AssertionError("a conversion produced an odd-length data set")
    try:
        cycled = convert(convert(explicit, EXPLICIT_BE), EXPLICIT_LE)
    except ConversionError:
        if ts == EXPLICIT_LE:
            # sent as it is (only its top-level framing was checked): a damaged nested item
            # shows when it is really re-encoded
            return
        raise
    # the first cycle normalizes what an as-is input may carry (reserved bytes, lengths)
    normal = cycled.read()
    again = convert(convert(cycled, EXPLICIT_BE), EXPLICIT_LE).read()
    if again != normal:
        raise AssertionError("Explicit VR LE -> BE -> LE is not the identity")
