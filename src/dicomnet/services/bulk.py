"""Composite Instance Retrieve Without Bulk Data (PS3.4 Annex Z): what a C-GET sends.

Theory of operation
-------------------
A C-GET on the Composite Instance Retrieve Without Bulk Data SOP Class
(1.2.840.10008.5.1.4.1.2.5.3) asks for the instances *without* their bulk data: the SCP's
C-STORE sub-operations "shall not include" the Attributes of PS3.4 Z.1.3 and leave everything
else unchanged (PS3.4 Z.4.2.3) -- same UIDs, same SOP class. Those Attributes are the pixel
data of every kind (Pixel Data, Float and Double Float Pixel Data, Pixel Data Provider URL),
Spectroscopy Data, Encapsulated Document, the repeating-group Overlay Data (60xx,3000), Curve
Data (50xx,3000) and Audio Sample Data (50xx,200C), and Waveform Data inside the Waveform
Sequence.

:func:`without_bulk_data` turns whatever a handler yielded (a data set, a file path, an
:class:`~dicomnet.archive.instancefile.InstanceFile`-like object with a ``path``, a
:class:`~dicomnet.datasource.DataSource`) into a new pydicom data set without them; the
handler's own data set is not modified. A compressed instance loses its only encapsulated
element, so what is left is sent as Explicit VR Little Endian (or converted by the sender as
any data set is). This runs in the handler pool, once per sub-operation, and only for that SOP
class: a plain C-GET sends files as they are stored.
"""

from __future__ import annotations

import copy
import os
from typing import TYPE_CHECKING

from dicomnet.datasource import DataSource
from dicomnet.transcode.syntax import EXPLICIT_LE, is_native

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["WITHOUT_BULK_DATA_GET", "is_bulk_data", "without_bulk_data"]

#: Composite Instance Retrieve Without Bulk Data - GET (PS3.4 Z.2)
WITHOUT_BULK_DATA_GET = "1.2.840.10008.5.1.4.1.2.5.3"

# PS3.4 Z.1.3, the Attributes at the top level of the data set
_TOP_LEVEL = frozenset((
    0x7FE00010,  # Pixel Data
    0x7FE00008,  # Float Pixel Data
    0x7FE00009,  # Double Float Pixel Data
    0x00287FE0,  # Pixel Data Provider URL
    0x56000020,  # Spectroscopy Data
    0x00420011,  # Encapsulated Document
))  # fmt: skip
_WAVEFORM_SEQUENCE = 0x54000100
_WAVEFORM_DATA = 0x54001010


def is_bulk_data(tag: int) -> bool:
    """Whether a top-level tag is one of PS3.4 Z.1.3's bulk data Attributes (the repeating
    groups included: Overlay Data 60xx,3000, Curve Data 50xx,3000, Audio Sample Data
    50xx,200C, xx even)."""
    if tag in _TOP_LEVEL:
        return True
    group, element = tag >> 16, tag & 0xFFFF
    if 0x6000 <= group <= 0x60FF and not group & 1:
        return element == 0x3000
    if 0x5000 <= group <= 0x50FF and not group & 1:
        return element in (0x3000, 0x200C)
    return False


def _dataset_of(payload: object) -> Dataset:
    """The data set of a handler's payload (read from its file when it is one)."""
    # lazy: pydicom is loaded by whoever yields data sets; reading files needs dcmread
    from pydicom import dcmread

    if isinstance(payload, DataSource):
        return payload.decode()
    if isinstance(payload, str | os.PathLike):
        return dcmread(os.fspath(payload))
    path = getattr(payload, "path", None)
    if isinstance(path, str | os.PathLike) and not hasattr(payload, "SOPInstanceUID"):
        return dcmread(os.fspath(path))  # an InstanceFile
    return payload  # type: ignore[return-value]  # a pydicom Dataset (checked by the sender)


def without_bulk_data(payload: object) -> Dataset:
    """A new data set: ``payload``'s without the PS3.4 Z.1.3 bulk data Attributes."""
    # lazy: as above
    from pydicom.dataset import Dataset
    from pydicom.uid import UID

    ds = _dataset_of(payload)
    out = Dataset()
    for elem in ds:  # only the top level: bulk data in other sequences is left alone
        tag = int(elem.tag)
        if is_bulk_data(tag):
            continue
        if tag == _WAVEFORM_SEQUENCE:
            elem = copy.deepcopy(elem)
            for item in elem.value:
                if _WAVEFORM_DATA in item:
                    del item[_WAVEFORM_DATA]
        out.add(elem)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        out.file_meta = copy.deepcopy(meta)
        ts = str(meta.get("TransferSyntaxUID", "") or "")
        if ts and not is_native(ts):
            # the encapsulated Pixel Data is gone: what is left is native data
            out.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    return out
