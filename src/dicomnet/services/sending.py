"""What a C-STORE-RQ carries: the instance, on which accepted context, in which transfer syntax.

Theory of operation
-------------------
Every sender of the library goes through :func:`prepare_store` (``send_c_store`` of either
association, ``store_many``, the C-GET and C-MOVE sub-operations of the Q/R SCP, ``dicomnet
storescu``):

* a **file path** is identified by :func:`dicomnet.transcode.inspect_file` (transfer syntax, and
  the SOP Class/Instance UIDs *of the data set*, PS3.4 B.2.1; a File Meta Information that
  disagrees gets a warning, a file without one is sent from its inferred syntax), then read:
  whole when small (one read, sent from memory in scatter-gather writes), as a file region
  when large (streamed, ``sendfile`` where the transport can);
* a :class:`~dicomnet.datasource.DataSource` is taken as it is;
* a pydicom ``Dataset`` is encoded by pydicom directly into the best accepted native syntax
  (or its own compressed one, when accepted).

Then the accepted syntaxes of the SOP class are ranked
(:func:`dicomnet.transcode.rank_targets`: own syntax > lossless re-encoding > decompression >
lossless compression) and the payload converted into the first that works
(:func:`dicomnet.transcode.convert`). A payload sent as it is costs nothing extra: no copy, no
decode. Nothing accepted for the SOP class raises
:class:`~dicomnet.errors.NoPresentationContextError`; nothing that can carry the instance,
or a failed conversion, raises :class:`~dicomnet.transcode.ConversionError`, each with a
message that says why.

Affected SOP Instance UIDs of files are sent as the file has them when they are at most 64
printable characters without a backslash, even when they break the PS3.5 9.1 rules (leading
zeros, letters): DCMTK and pynetdicom send such files too, and refusing them locally would only
lose data. What we *receive* is still checked strictly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias, cast

from dicomnet.datasource import DataSource
from dicomnet.errors import DicomNetError, NoPresentationContextError
from dicomnet.transcode import (
    CODECS_HINT,
    ConversionError,
    InstanceFile,
    convert,
    inspect_file,
    name_of,
    rank_targets,
)
from dicomnet.transcode.instance import guess_syntax
from dicomnet.transcode.syntax import EXPLICIT_LE, is_native
from dicomnet.uid import is_valid_uid

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dicomnet.services.contract import ServiceAssociation

__all__ = [
    "WHOLE_FILE",
    "Prepared",
    "StoreInput",
    "file_source",
    "prepare_store",
    "sendable_uid",
    "store_input",
]

LOGGER = logging.getLogger("dicomnet.scu")

#: Files up to this size are read whole and sent from memory; larger ones are streamed.
WHOLE_FILE = 4 << 20

StoreInput: TypeAlias = "Dataset | DataSource | InstanceFile | str | os.PathLike[str]"
"""What can be sent with C-STORE: a pydicom Dataset, an encoded data set, a Part 10 file."""


class Prepared:
    """A payload ready to go: context, encoded data set, the two Affected UIDs, and whether
    the payload is a conversion owned by the sender (closed once sent)."""

    __slots__ = ("context_id", "owned", "payload", "sop_class", "sop_instance")

    def __init__(self, context_id: int, payload: DataSource, sop_class: str, sop_instance: str,
                 owned: bool) -> None:  # fmt: skip
        self.context_id = context_id
        self.payload = payload
        self.sop_class = sop_class
        self.sop_instance = sop_instance
        self.owned = owned


def store_input(payload: object) -> StoreInput:
    """A handler's payload (anything it yielded) as what :func:`prepare_store` takes: paths,
    :class:`InstanceFile` and DataSources as they are, anything else taken for a pydicom
    Dataset (whose encoding fails clearly if it is not one)."""
    if isinstance(payload, str | os.PathLike | InstanceFile | DataSource):
        return payload
    return cast("Dataset", payload)


def close_handed(payload: object) -> None:
    """A handler that yields an owned :class:`DataSource` (a spool or download file of its
    own) hands the file over with the sub-operation: it is deleted once the sub-operation is
    done, sent or failed."""
    if isinstance(payload, DataSource) and payload.owned:
        try:
            payload.close()
        except OSError as exc:
            LOGGER.warning("cannot delete %s: %s", payload.path, exc)


def sendable_uid(uid: str, what: str) -> str:
    """``uid`` if it can go in a command set (see the module docstring), else DicomNetError."""
    if is_valid_uid(uid):
        return uid
    if 0 < len(uid) <= 64 and uid.isascii() and uid.isprintable() and "\\" not in uid:
        LOGGER.warning("%s %r does not follow the PS3.5 9.1 UID rules: sent as it is", what, uid)
        return uid
    raise DicomNetError(f"{what} {uid!r} cannot be sent (not a UID)")


def file_source(info: InstanceFile) -> DataSource:
    """The data set of a file to send: read whole when small, else a file region."""
    ts = info.transfer_syntax
    if info.size <= WHOLE_FILE:
        try:
            with open(info.path, "rb", buffering=0) as f:
                data = f.read()
        except OSError as exc:
            raise DicomNetError(f"cannot read {info.path!r}: {exc.strerror or exc}") from exc
        if len(data) < info.dataset_offset:
            raise DicomNetError(f"{info.path!r} shrank while being sent")
        return DataSource.from_bytes(memoryview(data)[info.dataset_offset :], ts)
    return DataSource(
        path=info.path, offset=info.dataset_offset, size=info.size - info.dataset_offset,
        transfer_syntax=ts,
    )  # fmt: skip


def _no_context(assoc: ServiceAssociation, sop_class: str) -> NoPresentationContextError:
    if assoc.accepted_syntaxes(sop_class, "scp"):
        # e.g. a C-GET requestor that proposed the storage class without the SCP role
        return NoPresentationContextError(
            f"SOP class {sop_class} was accepted without the SCP role for the peer "
            "(role selection, PS3.7 D.3.3.4): it cannot receive C-STOREs of it",
            role_refused=True,
        )
    return NoPresentationContextError(
        f"the peer accepted no presentation context for SOP class {sop_class}"
    )


def convert_for(
    assoc: ServiceAssociation, src: DataSource, sop_class: str, preferred: Sequence[str] = ()
) -> tuple[int, DataSource]:
    """(context ID, payload) for sending ``src`` as an instance of ``sop_class``: ``src``
    itself when its syntax was accepted, else its conversion (see the module docstring)."""
    accepted = assoc.accepted_syntaxes(sop_class)
    if not accepted:
        raise _no_context(assoc, sop_class)
    ts = src.transfer_syntax
    if ts is None:
        head = src.getbuffer()
        ts = guess_syntax(head[:64] if head is not None else next(src.iter_chunks(64), b""))
        if ts is None:
            raise ConversionError("the transfer syntax of the data set is unknown")
        src.transfer_syntax = ts
    targets = rank_targets(ts, accepted, preferred)
    if not targets:
        offered = ", ".join(name_of(t) for t in accepted)
        raise ConversionError(
            f"{name_of(ts)} cannot be sent: the peer accepted only {offered} for SOP class "
            f"{sop_class}, and no installed codec converts into it"
        )
    first: ConversionError | None = None
    for target in targets:
        try:
            out = convert(src, target)
        except ConversionError as exc:
            LOGGER.debug("converting %s into %s failed: %s", name_of(ts), name_of(target), exc)
            first = first or exc
            continue
        if target != ts:
            LOGGER.info("sending a %s instance as %s", name_of(ts), name_of(target))
        cx = assoc.find_context(sop_class, target)
        assert cx.context_id is not None
        return cx.context_id, out
    assert first is not None
    if CODECS_HINT in str(first) or targets[0] == ts:
        raise first  # a missing codec, or a data set that cannot be sent even as it is
    raise ConversionError(f"{name_of(ts)} could not be converted for the peer: {first}")


def _dataset_payload(
    assoc: ServiceAssociation, ds: Dataset, sop_class: str, preferred: Sequence[str]
) -> tuple[int, DataSource]:
    meta = getattr(ds, "file_meta", None)
    own_uid = meta.get("TransferSyntaxUID") if meta is not None else None
    own = str(own_uid).strip("\0 ") if own_uid else None
    accepted = assoc.accepted_syntaxes(sop_class)
    if not accepted:
        raise _no_context(assoc, sop_class)
    targets = rank_targets(own or EXPLICIT_LE, accepted, preferred)
    if targets and (targets[0] == own or ((own is None or is_native(own)) and is_native(targets[0]))):
        # pydicom writes the data set straight into that syntax: no intermediate encoding
        cx = assoc.find_context(sop_class, targets[0])
        assert cx.context_id is not None
        return cx.context_id, DataSource.from_dataset(ds, targets[0])
    # compression, or compressed data the peer did not accept: encode as it is, then convert
    return convert_for(assoc, DataSource.from_dataset(ds, own or EXPLICIT_LE), sop_class,
                       preferred)  # fmt: skip


def prepare_store(
    assoc: ServiceAssociation,
    dataset: StoreInput,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    preferred: Sequence[str] = (),
) -> Prepared:
    """The :class:`Prepared` C-STORE of ``dataset`` (a path, an :class:`InstanceFile`, a
    DataSource or a pydicom Dataset) over ``assoc`` (see the module docstring)."""
    if isinstance(dataset, str | os.PathLike):
        dataset = inspect_file(os.fspath(dataset))
        for warning in dataset.warnings:
            LOGGER.warning("%s: %s", dataset.path, warning)
    if isinstance(dataset, InstanceFile):
        sop_class = sop_class_uid or dataset.sop_class_uid
        sop_instance = sop_instance_uid or dataset.sop_instance_uid
        src = file_source(dataset)
        context_id, payload = convert_for(assoc, src, sop_class, preferred)
    elif isinstance(dataset, DataSource):
        src = dataset
        if sop_class_uid is None or sop_instance_uid is None:
            decoded = src.decode()
            sop_class_uid = sop_class_uid or str(decoded.SOPClassUID)
            sop_instance_uid = sop_instance_uid or str(decoded.SOPInstanceUID)
        sop_class, sop_instance = sop_class_uid, sop_instance_uid
        context_id, payload = convert_for(assoc, src, sop_class, preferred)
    else:
        ds = dataset
        try:
            sop_class = str(sop_class_uid or ds.SOPClassUID)
            sop_instance = str(sop_instance_uid or ds.SOPInstanceUID)
        except AttributeError as exc:
            raise DicomNetError(f"the data set has no SOP Class/Instance UID: {exc}") from exc
        src = None
        context_id, payload = _dataset_payload(assoc, ds, sop_class, preferred)
    owned = src is not None and payload is not src
    return Prepared(
        context_id,
        payload,
        sendable_uid(sop_class.strip("\0 "), "SOP Class UID"),
        sendable_uid(sop_instance.strip("\0 "), "SOP Instance UID"),
        owned,
    )
