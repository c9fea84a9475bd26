"""Presentation contexts as the application sees them (PS3.8 section 7.1.1.13, PS3.7 D.3.3.4).

Theory of operation
-------------------
A presentation context pairs one abstract syntax (a SOP class) with the transfer syntaxes that may
encode its datasets. The requestor proposes contexts with odd IDs 1-255 (PS3.8 section 9.3.2.2),
each with one or more transfer syntaxes; the acceptor answers each with a result (PS3.8 Table
9-18) and, on acceptance, the one transfer syntax both sides will use. SCP/SCU role selection
(PS3.7 Annex D.3.3.4) says, per SOP class, which side may invoke operations; when it is absent
the requestor is the SCU and the acceptor the SCP.

:class:`PresentationContext` is the mutable, user-facing object: on the requested side it holds
``transfer_syntaxes`` (what we propose) and ``scu_role``/``scp_role`` (what role selection we
propose, ``None`` = no proposal); after negotiation the association's accepted/rejected copies
also hold ``result``, the single accepted ``transfer_syntax`` and the roles ``as_scu``/``as_scp``
that *we* may play on it. The wire-level objects of :mod:`dicomnet.ul.pdu` are derived from it.

Also here: the transfer syntax UIDs we use by default, the query/retrieve information model
short names (``"P"``, ``"S"``, ``"W"``, ...), and ready-made context lists for storage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple, SupportsIndex

from dicomnet._record import Record
from dicomnet.uid import UIDValue
from dicomnet.ul.pdu import PresentationContextRQ, uid_norm

if TYPE_CHECKING:
    from dicomnet.ul.primitives import SCP_SCU_RoleSelectionNegotiation

__all__ = [
    "DEFAULT_TRANSFER_SYNTAXES",
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "PREFERRED_TRANSFER_SYNTAXES",
    "QR_MODELS",
    "RECEIVE_TRANSFER_SYNTAXES",
    "VERIFICATION",
    "AcceptedSyntax",
    "PresentationContext",
    "PresentationContextTuple",
    "build_context",
    "build_role",
    "check_uid",
    "context_result_text",
    "query_model_uid",
    "storage_contexts",
    "storage_sop_classes",
]

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

PREFERRED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
"""Proposed (and accepted) when no transfer syntax is given: the two uncompressed little endian
syntaxes every peer supports (Implicit VR LE is the DICOM default, PS3.5 section 10.1). Big
endian and deflate are left out on purpose: re-encoding into them is lossy or slow in pydicom;
add them explicitly when wanted."""

DEFAULT_TRANSFER_SYNTAXES: list[str] = [
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
]
"""The four non-compressed transfer syntaxes (PS3.5 section 10 and Annex A.5), in the order
pynetdicom programs know under this name; the ready-made ``*PresentationContexts`` lists carry
them. dicomnet's own default proposal is :data:`PREFERRED_TRANSFER_SYNTAXES`."""

_J = "1.2.840.10008.1.2.4."
RECEIVE_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    _J + "50", _J + "51", _J + "57", _J + "70", _J + "80", _J + "81", _J + "90", _J + "91",
    _J + "92", _J + "93", _J + "201", _J + "202", _J + "203", "1.2.840.10008.1.2.5",
)  # fmt: skip
"""Proposed when no transfer syntax is given for a context on which we take the SCP role
(storage sub-operations of a C-GET, PS3.4 C.4.3): every image syntax a peer may have stored,
uncompressed first, so whatever the peer holds can arrive as it is (DCMTK's ``+xa``); the
video syntaxes are left out to keep ~120 such contexts within a reasonable A-ASSOCIATE-RQ."""

VERIFICATION = "1.2.840.10008.1.1"

# PS3.8 Table 9-18
_RESULT_TEXT = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


def context_result_text(result: int | None) -> str:
    """Human text for a presentation context result (PS3.8 Table 9-18)."""
    if result is None:
        return "pending"
    return _RESULT_TEXT.get(result, f"unknown result {result}")


def check_uid(uid: str, what: str) -> str:
    """``uid`` without trailing padding, or ValueError unless it is 1-64 digits and dots
    (PS3.5 Table 6.2-1 UI); ``what`` names it in the message."""
    uid = uid_norm(str(uid))
    if not uid or len(uid) > 64 or any(c not in "0123456789." for c in uid):
        raise ValueError(f"invalid {what} UID {uid!r}")
    return uid


class AcceptedSyntax(UIDValue):
    """The transfer syntax UID accepted for a presentation context: a ``str`` that also reads
    as pynetdicom's one-item list of it, ``cx.transfer_syntax[0]`` being the whole UID (programs
    written for pynetdicom take it so, e.g. its ``findscu -w`` when it writes the File Meta
    Information; a plain string would give them ``"1"``). Every other index and slice, and
    everything else, is the string's own; pydicom's UID properties (``name``...) answer as for
    every negotiated UID (:class:`~dicomnet.uid.UIDValue`)."""

    __slots__ = ()

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        if type(key) is int and key == 0:
            return str(self)
        return str.__getitem__(self, key)


class PresentationContextTuple(NamedTuple):
    """An accepted context as (ID, abstract syntax, transfer syntax):
    :attr:`PresentationContext.as_tuple`, pynetdicom's shape of it."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class PresentationContext(Record, frozen=False):
    """One presentation context (see the module docstring).

    ``transfer_syntaxes``: proposed (requested side) or supported (acceptor side) syntaxes
    (default: :data:`PREFERRED_TRANSFER_SYNTAXES`; a single UID string is accepted too).
    ``transfer_syntax``: after negotiation, the accepted one (``None`` if rejected).
    ``scu_role``/``scp_role``: role selection to propose or accept; ``None`` = default roles.
    ``as_scu``/``as_scp``: after negotiation, whether *this* AE may act as SCU / SCP on it.

    Built as pynetdicom programs build one: ``PresentationContext()`` starts with no abstract
    syntax and no transfer syntaxes; assigning a *list* to ``transfer_syntax`` sets the
    syntaxes to propose or support (pynetdicom's meaning), as ``transfer_syntaxes`` does.

    A mutable :class:`~dicomnet._record.Record`: equality compares every field, like the
    dataclass it replaces (not hashable).
    """

    __slots__ = (
        "abstract_syntax",
        "as_scp",
        "as_scu",
        "context_id",
        "result",
        "scp_role",
        "scu_role",
        "transfer_syntax",
        "transfer_syntaxes",
    )
    abstract_syntax: str
    transfer_syntaxes: list[str]
    context_id: int | None
    scu_role: bool | None
    scp_role: bool | None
    result: int | None
    transfer_syntax: str | None
    as_scu: bool
    as_scp: bool

    def __init__(
        self,
        abstract_syntax: str = "",
        transfer_syntaxes: Iterable[str] | str | None = None,
        context_id: int | None = None,
        scu_role: bool | None = None,
        scp_role: bool | None = None,
        result: int | None = None,
        transfer_syntax: str | None = None,
        as_scu: bool = False,
        as_scp: bool = False,
    ) -> None:
        self.abstract_syntax = check_uid(abstract_syntax, "abstract syntax") if abstract_syntax else ""
        if transfer_syntaxes is None:  # an empty context (pynetdicom's start) has none yet
            transfer_syntaxes = PREFERRED_TRANSFER_SYNTAXES if abstract_syntax else ()
        self.transfer_syntaxes = _syntax_list(transfer_syntaxes)
        self.context_id = context_id
        self.scu_role = scu_role
        self.scp_role = scp_role
        self.result = result
        self.transfer_syntax = transfer_syntax
        self.as_scu = as_scu
        self.as_scp = as_scp

    def __setattr__(self, name: str, value: object) -> None:
        if name == "transfer_syntax" and isinstance(value, list | tuple):
            # pynetdicom's ``cx.transfer_syntax = [...]``: the syntaxes to propose/support
            object.__setattr__(self, "transfer_syntaxes", _syntax_list(value))
            return
        object.__setattr__(self, name, value)

    @classmethod
    def from_wire(
        cls, context_id: int, abstract_syntax: str, transfer_syntaxes: Sequence[str]
    ) -> PresentationContext:
        """A context built from a peer's PDU: values kept as received (padding stripped) and
        *not* validated, since negotiation, not construction, decides what to do with a
        malformed UID (PS3.8 Table 9-18 result 3 or 4)."""
        cx = object.__new__(cls)
        # negotiated UIDs answer pydicom's UID properties, as pynetdicom's contexts hold UIDs
        cx.abstract_syntax = UIDValue(uid_norm(abstract_syntax))
        cx.transfer_syntaxes = [UIDValue(uid_norm(t)) for t in transfer_syntaxes]
        cx.context_id = context_id
        cx.scu_role = cx.scp_role = cx.result = cx.transfer_syntax = None
        cx.as_scu = cx.as_scp = False
        return cx

    @property
    def is_accepted(self) -> bool:
        return self.result == 0

    @property
    def as_tuple(self) -> PresentationContextTuple:
        """(context ID, abstract syntax, transfer syntax): the accepted syntax, else the first
        one proposed or supported."""
        ts = self.transfer_syntax or (self.transfer_syntaxes[0] if self.transfer_syntaxes else "")
        return PresentationContextTuple(self.context_id or 0, self.abstract_syntax, str(ts))

    @property
    def status(self) -> str:
        """The negotiation result in pynetdicom's words ("Pending", "Accepted", "User
        Rejected"...); :func:`context_result_text` gives PS3.8's."""
        return "Pending" if self.result is None else _RESULT_WORDS.get(self.result, "Unknown")

    def add_transfer_syntax(self, uid: str) -> None:
        uid = check_uid(uid, "transfer syntax")
        if uid not in self.transfer_syntaxes:
            self.transfer_syntaxes.append(uid)

    def to_rq(self) -> PresentationContextRQ:
        """The A-ASSOCIATE-RQ item (PS3.8 section 9.3.2.2); ``context_id`` must be set."""
        if self.context_id is None:
            raise ValueError("presentation context has no ID")
        if not self.transfer_syntaxes:
            raise ValueError(f"no transfer syntax for {self.abstract_syntax}")
        return PresentationContextRQ(
            self.context_id, self.abstract_syntax, tuple(self.transfer_syntaxes)
        )

    def __repr__(self) -> str:
        # pynetdicom's: the abstract syntax's name (``print(ae.requested_contexts)``)
        return _uid_name(self.abstract_syntax) if self.abstract_syntax else "PresentationContext()"

    def __str__(self) -> str:
        # pynetdicom's layout, which programs print: ID, abstract syntax, syntaxes (the
        # accepted one once negotiated), then result and roles once negotiated
        lines = [] if self.context_id is None else [f"ID: {self.context_id}"]
        if self.abstract_syntax:
            lines.append(f"Abstract Syntax: {_uid_name(self.abstract_syntax)}")
        lines.append("Transfer Syntax(es):")
        shown = [self.transfer_syntax] if self.transfer_syntax else self.transfer_syntaxes
        lines.extend([f"    ={_uid_name(t)}" for t in shown] or ["    (none)"])
        if self.result is not None:
            lines.append(f"Result: {self.status}")
            roles = {(True, False): "SCU only", (True, True): "SCU and SCP",
                     (False, True): "SCP only"}  # fmt: skip
            lines.append(f"Role: {roles.get((self.as_scu, self.as_scp), '(none)')}")
        return "\n".join(lines)


#: PS3.8 Table 9-18 results in the words ``str(context)`` uses (as pynetdicom prints them)
_RESULT_WORDS = {0: "Accepted", 1: "User Rejected", 2: "Provider Rejected",
                 3: "Abstract Syntax Not Supported", 4: "Transfer Syntax(es) Not Supported"}  # fmt: skip


def _syntax_list(syntaxes: Iterable[str] | str) -> list[str]:
    """Transfer syntax UIDs checked, in order, without repeats."""
    if isinstance(syntaxes, str):
        syntaxes = [syntaxes]
    out: list[str] = []
    for t in syntaxes:
        t = check_uid(t, "transfer syntax")
        if t not in out:
            out.append(t)
    return out


def _uid_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        return str(UID(uid).name)
    except Exception:  # pragma: no cover - pydicom always knows or echoes
        return uid


def build_context(
    abstract_syntax: str,
    transfer_syntaxes: str | Sequence[str] | None = None,
    *,
    transfer_syntax: str | Sequence[str] | None = None,
) -> PresentationContext:
    """A :class:`PresentationContext` for ``abstract_syntax``.

    ``transfer_syntaxes`` (one UID or a sequence) defaults to :data:`DEFAULT_TRANSFER_SYNTAXES`
    (as pynetdicom programs expect; an AE's ``add_requested_context`` proposes
    :data:`PREFERRED_TRANSFER_SYNTAXES` instead); ``transfer_syntax=`` is the same argument under
    the name pynetdicom programs use.
    """
    if transfer_syntax is not None:
        if transfer_syntaxes is not None:
            raise TypeError("give transfer_syntaxes or transfer_syntax, not both")
        transfer_syntaxes = transfer_syntax
    if transfer_syntaxes is None:
        transfer_syntaxes = DEFAULT_TRANSFER_SYNTAXES
    elif isinstance(transfer_syntaxes, str):
        transfer_syntaxes = [transfer_syntaxes]
    return PresentationContext(str(abstract_syntax), list(transfer_syntaxes))


def build_role(
    uid: str, scu_role: bool = False, scp_role: bool = False
) -> SCP_SCU_RoleSelectionNegotiation:
    """An SCP/SCU Role Selection item (PS3.7 D.3.3.4) for ``ext_neg=`` of associate(), the
    object pynetdicom's ``build_role`` returns (``sop_class_uid``, boolean ``scu_role`` and
    ``scp_role``; editable until it is sent).

    E.g. ``build_role(CTImageStorage, scp_role=True)`` lets us receive C-GET's C-STORE
    sub-operations for CT images.
    """
    # lazy: the negotiation items are not on a plain client's start-up path (echoscu)
    from dicomnet.ul.primitives import SCP_SCU_RoleSelectionNegotiation

    item = SCP_SCU_RoleSelectionNegotiation()
    item.sop_class_uid = check_uid(uid, "SOP class")
    item.scu_role, item.scp_role = bool(scu_role), bool(scp_role)
    return item


# --- query/retrieve information models (PS3.4 Annex C.3, K.6) ----------------------------------

_QR = "1.2.840.10008.5.1.4.1.2."
QR_MODELS: dict[str, dict[str, str]] = {
    # short name -> operation -> SOP class UID
    "P": {"find": _QR + "1.1", "move": _QR + "1.2", "get": _QR + "1.3"},  # Patient Root
    "S": {"find": _QR + "2.1", "move": _QR + "2.2", "get": _QR + "2.3"},  # Study Root
    "O": {"find": _QR + "3.1", "move": _QR + "3.2", "get": _QR + "3.3"},  # Patient/Study Only (retired)
    "W": {"find": "1.2.840.10008.5.1.4.31"},  # Modality Worklist
    "C": {"move": _QR + "4.2", "get": _QR + "4.3"},  # Composite Instance Root
    "CB": {"get": _QR + "5.3"},  # Composite Instance Retrieve Without Bulk Data
}
_LONG_NAMES = {
    "PatientRootQueryRetrieveInformationModel": "P",
    "StudyRootQueryRetrieveInformationModel": "S",
    "PatientStudyOnlyQueryRetrieveInformationModel": "O",
    "ModalityWorklistInformationModel": "W",
    "CompositeInstanceRootRetrieve": "C",
    "CompositeInstanceRetrieveWithoutBulkData": "CB",
}
_OP_SUFFIX = {"find": "Find", "move": "Move", "get": "Get"}


def query_model_uid(model: str, operation: str) -> str:
    """The SOP class UID for a query/retrieve model.

    ``model`` is a UID, a short name (``"P"`` patient root, ``"S"`` study root, ``"O"``
    patient/study only, ``"W"`` modality worklist, ``"C"`` composite instance root, ``"CB"``
    without bulk data) or a pydicom keyword such as
    ``"PatientRootQueryRetrieveInformationModelFind"``. ``operation`` is find, get or move.
    """
    operation = operation.lower()
    model = str(model)
    if model and model[0].isdigit():
        return check_uid(model, "query model")
    short = model
    if model not in QR_MODELS:
        for long_name, s in _LONG_NAMES.items():
            if model in (long_name, long_name + _OP_SUFFIX.get(operation, "")):
                short = s
                break
        else:
            raise ValueError(f"unknown query/retrieve information model {model!r}")
    try:
        return QR_MODELS[short][operation]
    except KeyError:
        raise ValueError(f"model {model!r} has no {operation.upper()} SOP class") from None


# --- storage (PS3.4 Annex B.5) -------------------------------------------------------------------

_COMMON_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray for processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography for presentation
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT Plan
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
)


def storage_sop_classes() -> list[str]:
    """Every non-retired Storage SOP class (PS3.4 Table B.5-1), most common ones first."""
    # lazy: the UID tables are only needed by a storage SCP's context list, not by a client
    from dicomnet.uid import STORAGE_SOP_CLASSES

    rest = [
        uid
        for uid in STORAGE_SOP_CLASSES.values()
        if uid not in _COMMON_STORAGE and uid != "1.2.840.10008.1.3.10"  # not a media SOP class
    ]
    return list(_COMMON_STORAGE) + rest


def storage_contexts(
    transfer_syntaxes: Sequence[str] | None = None,
    limit: int = 120,
    sop_classes: Iterable[str] | None = None,
) -> list[PresentationContext]:
    """Presentation contexts for storage SOP classes (at most ``limit``; PS3.8 allows 128)."""
    classes = list(sop_classes) if sop_classes is not None else storage_sop_classes()
    syntaxes = PREFERRED_TRANSFER_SYNTAXES if transfer_syntaxes is None else transfer_syntaxes
    return [build_context(uid, syntaxes) for uid in classes[:limit]]


# --- names pynetdicom programs import from here ---------------------------------------------------

ALL_TRANSFER_SYNTAXES: list[str] = [
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    _J + "50", _J + "51", _J + "57", _J + "70",  # JPEG baseline, extended, lossless, SV1
    _J + "80", _J + "81",  # JPEG-LS
    _J + "90", _J + "91", _J + "92", _J + "93",  # JPEG 2000 (and multi-component)
    _J + "94", _J + "95",  # JPIP referenced (and deflate)
    _J + "100", _J + "100.1", _J + "101", _J + "101.1",  # MPEG-2
    _J + "102", _J + "102.1", _J + "103", _J + "103.1", _J + "104", _J + "104.1",  # MPEG-4
    _J + "105", _J + "105.1", _J + "106", _J + "106.1",  # MPEG-4 (3D, stereo)
    _J + "107", _J + "108",  # HEVC
    _J + "110", _J + "111", _J + "112",  # JPEG XL
    _J + "201", _J + "202", _J + "203", _J + "204", _J + "205",  # HTJ2K, JPIP HTJ2K
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.7.1", "1.2.840.10008.1.2.7.2", "1.2.840.10008.1.2.7.3",  # SMPTE 2110
    "1.2.840.10008.1.2.8.1",  # Deflated Image Frame Compression
]  # fmt: skip
"""The non-retired transfer syntaxes of PS3.6 Annex A in registry order, as pynetdicom's
``ALL_TRANSFER_SYNTAXES`` lists them (so without Encapsulated Uncompressed Explicit VR Little
Endian, 1.2.840.10008.1.2.1.98). For ``add_supported_context(uid, ALL_TRANSFER_SYNTAXES)`` in
an acceptor that stores what it receives as it is."""

# The pynetdicom-style context lists (one per service class, see dicomnet.presentation_lists),
# declared here for type checkers and built by __getattr__ below on first access.
VerificationPresentationContexts: list[PresentationContext]
StoragePresentationContexts: list[PresentationContext]
AllStoragePresentationContexts: list[PresentationContext]
QueryRetrievePresentationContexts: list[PresentationContext]
BasicWorklistManagementPresentationContexts: list[PresentationContext]
RelevantPatientInformationPresentationContexts: list[PresentationContext]
SubstanceAdministrationPresentationContexts: list[PresentationContext]
DisplaySystemPresentationContexts: list[PresentationContext]
HangingProtocolPresentationContexts: list[PresentationContext]
DefinedProcedureProtocolPresentationContexts: list[PresentationContext]
ColorPalettePresentationContexts: list[PresentationContext]
ImplantTemplatePresentationContexts: list[PresentationContext]
ProtocolApprovalPresentationContexts: list[PresentationContext]
NonPatientObjectPresentationContexts: list[PresentationContext]
UnifiedProcedurePresentationContexts: list[PresentationContext]
ModalityPerformedPresentationContexts: list[PresentationContext]
ProcedureStepPresentationContexts: list[PresentationContext]
StorageCommitmentPresentationContexts: list[PresentationContext]
PrintManagementPresentationContexts: list[PresentationContext]
MediaStoragePresentationContexts: list[PresentationContext]
MediaCreationManagementPresentationContexts: list[PresentationContext]
InstanceAvailabilityPresentationContexts: list[PresentationContext]
ApplicationEventLoggingPresentationContexts: list[PresentationContext]
RTMachineVerificationPresentationContexts: list[PresentationContext]

__all__ += [
    "ALL_TRANSFER_SYNTAXES",
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "DefinedProcedureProtocolPresentationContexts",
    "DisplaySystemPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "MediaCreationManagementPresentationContexts",
    "MediaStoragePresentationContexts",
    "ModalityPerformedPresentationContexts",
    "NonPatientObjectPresentationContexts",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "StorageCommitmentPresentationContexts",
    "StoragePresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "UnifiedProcedurePresentationContexts",
    "VerificationPresentationContexts",
]


def __getattr__(name: str) -> object:
    """PEP 562 hook building a ``*PresentationContexts`` list on first access.

    Every client tool imports this module, and the lists hold some 400 contexts that only
    pynetdicom-style programs read; building them here at import would cost every ``echoscu``
    run. The list is built once, kept as a module global (so this hook is not called again for
    it) and, like pynetdicom's, shared: copy a context before changing it (the AE's
    ``requested_contexts``/``supported_contexts`` setters already do).
    """
    if name.endswith("PresentationContexts"):
        # lazy: the SOP class tables are needed only when a list is first read (see above)
        from dicomnet.presentation_lists import CONTEXT_LIST_TRANSFER_SYNTAXES, abstract_syntaxes

        try:
            uids = abstract_syntaxes(name)
        except KeyError:
            pass
        else:
            contexts = [build_context(uid, CONTEXT_LIST_TRANSFER_SYNTAXES) for uid in uids]
            globals()[name] = contexts
            return contexts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
