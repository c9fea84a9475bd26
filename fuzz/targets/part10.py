"""Fuzz target ``part10``: the Part 10 file readers storescu relies on (PS3.10 section 7.1).

Theory of operation
-------------------
The input is the whole content of a file. It is written to a temporary file, then

* :func:`dicomnet.cli.storescu.read_part10_info` (the meta header scan that picks SOP class,
  instance and transfer syntax) must return a ``Part10Info`` or None, never raise;
* :meth:`DataSource.from_file <dicomnet.dimse.dataset.DataSource.from_file>` (what
  ``send_c_store(path)`` streams from) may raise only :class:`~dicomnet.errors.DimseError`; its
  ``iter_chunks`` (two chunk sizes) must yield exactly the file bytes after the meta header.

When both accept the file they must agree on where the data set starts and on its transfer
syntax: storescu negotiates with the one and sends the bytes the other one finds.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from dicomnet.cli.storescu import read_part10_info
from dicomnet.dimse.dataset import IMPLICIT_VR_LITTLE_ENDIAN, DataSource
from dicomnet.errors import DimseError

__all__ = ["test_one_input"]

_DIR = tempfile.mkdtemp(prefix="dicomnet-fuzz-part10-")
atexit.register(shutil.rmtree, _DIR, True)
_PATH = os.path.join(_DIR, "input.dcm")


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    info = read_part10_info(_PATH)
    try:
        source = DataSource.from_file(_PATH, IMPLICIT_VR_LITTLE_ENDIAN)
    except DimseError:
        return
    if source.offset < 0 or source.offset + source.size != len(data):
        raise AssertionError(f"offset {source.offset} + size {source.size} != {len(data)}")
    expected = data[source.offset :]
    for chunk_size in (1 + len(data) % 251, 1 << 16):
        chunks = list(source.iter_chunks(chunk_size))
        if any(len(c) != chunk_size for c in chunks[:-1]):
            raise AssertionError(f"iter_chunks({chunk_size}) yielded a short chunk early")
        if b"".join(chunks) != expected:
            raise AssertionError(f"iter_chunks({chunk_size}) differs from the file content")
    # Padding (NUL/space, PS3.5 9.1) is not part of a UID: compare what is left. A UID with
    # leading padding is garbage either way; the two readers only differ in how they trim it.
    if info is not None and (
        info.dataset_offset != source.offset
        or info.transfer_syntax.strip("\0 ") != (source.transfer_syntax or "").strip("\0 ")
    ):
        raise AssertionError(
            f"read_part10_info says data set at {info.dataset_offset} in "
            f"{info.transfer_syntax!r}; DataSource.from_file says {source.offset} in "
            f"{source.transfer_syntax!r}"
        )
