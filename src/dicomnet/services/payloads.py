"""Data sets of requests and responses: what an operation is given, as what goes on the wire.

Theory of operation
-------------------
An application hands an operation a data set in whatever form it has: a pydicom ``Dataset``,
already encoded bytes, or a :class:`~dicomnet.datasource.DataSource` (a file, a spool file,
received bytes). :func:`as_payload` turns it into the ``DataSource`` a primitive carries,
encoded in the transfer syntax accepted for the presentation context it travels on (PS3.7
section 6.3.1); a pydicom Dataset is only encoded when the message is sent.
:func:`decode_payload` is the other direction for a response's data set, with a decoding
failure logged and reported as no data set (the status still counts). :func:`reply_payload` is
the data set of a DIMSE-N response as the requestor's ``send_n_*`` returns it: a Success or
Warning response without one gives an empty ``Dataset`` (what pynetdicom returns, so programs
can iterate it), any other status None.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeAlias, cast

from dicomnet.datasource import DataSource
from dicomnet.dimse.primitives import DIMSEPrimitive
from dicomnet.dimse.status import Category, category
from dicomnet.errors import DicomNetError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DataSetLike", "as_payload", "decode_payload", "reply_payload"]

LOGGER = logging.getLogger("dicomnet.scu")

DataSetLike: TypeAlias = "Dataset | DataSource | bytes | bytearray | memoryview"
"""What an operation accepts as a data set (see :func:`as_payload`)."""


def as_payload(data: DataSetLike | object, transfer_syntax: str | None) -> DataSource:
    """``data`` (a pydicom Dataset, bytes or a DataSource) as a DataSource in
    ``transfer_syntax`` (bytes and DataSources are taken as already encoded in it; anything
    else is taken for a pydicom Dataset, whose encoding fails clearly if it is not one)."""
    if isinstance(data, DataSource):
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return DataSource.from_bytes(data, transfer_syntax)
    if transfer_syntax is None:  # pragma: no cover - accepted contexts always have one
        raise DicomNetError("no transfer syntax to encode the data set")
    return DataSource.from_dataset(cast("Dataset", data), transfer_syntax)


def decode_payload(rsp: DIMSEPrimitive, transfer_syntax: str | None) -> Dataset | None:
    """The data set a response carries, decoded (None when it has none or it is unreadable)."""
    source = rsp.payload
    if source is None:
        return None
    try:
        return source.decode(transfer_syntax) if transfer_syntax else source.decode()  # type: ignore[no-any-return]
    except DicomNetError as exc:
        LOGGER.error("cannot decode the %s data set: %s", rsp.SERVICE, exc)
        return None
    finally:
        source.close()


def reply_payload(rsp: DIMSEPrimitive, transfer_syntax: str | None) -> Dataset | None:
    """The data set of a DIMSE-N response (event reply, attribute list, action reply; PS3.7
    10.1): decoded; an empty Dataset when a Success or Warning response carries none; None for
    other statuses without one, or when it cannot be decoded."""
    if rsp.payload is not None:
        return decode_payload(rsp, transfer_syntax)
    code = rsp.Status
    if isinstance(code, int) and category(code) in (Category.SUCCESS, Category.WARNING):
        # lazy: pydicom is loaded by whoever sent the request's data set or reads this one
        from pydicom.dataset import Dataset

        return Dataset()
    return None
