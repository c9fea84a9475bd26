"""The archive's SQLite index and its Query/Retrieve engine.

Theory of operation
-------------------
Four normalised tables, ``patient`` > ``study`` > ``series`` > ``instance``, hold the attributes
of :data:`dicomnet.archive.models.ATTRIBUTES` as columns, with SQL indexes on the unique keys and
the usual matching columns.  PN values also live case-folded in a shadow column, TM values
normalised to ``HHMMSS.ffffff``, IS values as integers (see :mod:`dicomnet.archive.matching`).
Entity attributes follow the most recently stored instance ("last writer wins"); a patient is
identified by Patient ID alone (IssuerOfPatientID is not considered).

Concurrency: one SQLite connection per thread (``threading.local``), WAL journal so readers
never block the writer nor each other; writes are serialised by a process-wide lock (so
in-process writers never meet SQLITE_BUSY) and each instance is one short ``BEGIN IMMEDIATE``
transaction.  Durability: ``synchronous=NORMAL`` by default - a committed row survives a crash
of the process (the WAL is in the page cache), and a power loss can only lose the last few
transactions, never corrupt the database; ``durable=True`` switches to ``synchronous=FULL``
(the WAL is fsynced at every commit). The ``integrity`` table keeps, per instance stored with
it, a quick checksum of its file and the time it was stored, for the start-up check after a
crash.

Storing is cheap because the indexed attributes are taken from the first bytes of the received
data set by :func:`scan_instance_fields` (element headers walked with ``struct``, only the
wanted values decoded; tens of microseconds). When that fast path does not apply (big endian,
deflate, ISO 2022 character sets...) :func:`read_instance_fields` reads the file up to Pixel
Data with pydicom (``stop_before_pixels`` + ``specific_tags``; several hundred microseconds).
Upserts are one transaction per instance (or per batch with :meth:`ArchiveIndex.add_instances`).

Querying (PS3.4 C.4.1.3.1, hierarchical search only; relational queries are not offered):
:meth:`ArchiveIndex.query` validates the identifier against the model and level (the level must
exist in the model and the unique key of every level above must be a single value, else
:class:`QueryError` 0xA900), turns every key at or above the query level into parameterised SQL
(:func:`dicomnet.archive.matching.sql_condition`), fetches all matching rows in one statement
(so no read transaction stays open while the caller sends responses), then builds the response
identifiers lazily, one pydicom ``Dataset`` per match, with pre-converted ``DataElement`` values.

Keys the index does not hold as columns are answered from the stored file of the matching
instance (IMAGE level) or of a representative instance of the entity (higher levels; entity
attributes are the same in all its instances), and matched in Python with the same rules.  Keys
below the query level are returned empty and do not restrict the match.  Sequence keys are
return keys only (the stored sequence is returned; C.2.2.2.6 sequence matching is not offered).

Specific Character Set: values are stored as decoded Unicode text.  A response carries the
Specific Character Set (0008,0005) of the stored instance its row came from (the last stored one
for an entity); pydicom encodes the values with it.  Matching compares Unicode strings, so the
character set of the request does not matter.

Retrieval (:meth:`ArchiveIndex.instances_for`) applies the same rules to the unique keys only
(PS3.4 C.4.2.2.1 / C.4.3.2.1); the query-level unique key must be present and not universal.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.valuerep import IS, PersonName

from dicomnet.archive import matching
from dicomnet.archive.models import (
    ATTRIBUTES,
    ATTRIBUTES_BY_TAG,
    NON_KEY_TAGS,
    STATUS_IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    STATUS_UNABLE_TO_PROCESS,
    UNIQUE_KEYS,
    Attribute,
    Level,
    Model,
    QueryError,
    effective_level,
    levels_of,
    parse_level,
    parse_model,
)

__all__ = [
    "MAX_PARAMETERS",
    "ArchiveIndex",
    "InstanceFields",
    "QueryError",
    "RetrieveItem",
    "RetrieveSet",
    "fields_from_dataset",
    "read_instance_fields",
    "scan_instance_fields",
]

_A900 = STATUS_IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
#: Most key values one query may bind (below SQLite's 32766 variables): larger identifiers are
#: refused with 0xC000 rather than split.
MAX_PARAMETERS = 30000
#: Rows read per SQL statement while a query or retrieve is answered (keyset paging): a peer
#: reading its results slowly holds one page in memory, not its whole result.
PAGE_ROWS = 256


@dataclass(frozen=True, slots=True)
class InstanceFields:
    """The indexed attributes of one instance, as stripped strings (``''`` when absent)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    modality: str = ""
    series_number: str = ""
    series_description: str = ""
    instance_number: str = ""
    specific_character_set: str = ""


_FIELD_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("sop_instance_uid", "SOPInstanceUID"),
    ("sop_class_uid", "SOPClassUID"),
    ("study_instance_uid", "StudyInstanceUID"),
    ("series_instance_uid", "SeriesInstanceUID"),
    ("patient_id", "PatientID"),
    ("patient_name", "PatientName"),
    ("patient_birth_date", "PatientBirthDate"),
    ("patient_sex", "PatientSex"),
    ("study_date", "StudyDate"),
    ("study_time", "StudyTime"),
    ("accession_number", "AccessionNumber"),
    ("study_id", "StudyID"),
    ("study_description", "StudyDescription"),
    ("referring_physician_name", "ReferringPhysicianName"),
    ("modality", "Modality"),
    ("series_number", "SeriesNumber"),
    ("series_description", "SeriesDescription"),
    ("instance_number", "InstanceNumber"),
    ("specific_character_set", "SpecificCharacterSet"),
)
_FIELD_TAGS: tuple[tuple[str, BaseTag], ...] = tuple(
    (name, BaseTag(ATTRIBUTES[kw].tag if kw in ATTRIBUTES else 0x00080005))
    for name, kw in _FIELD_KEYWORDS
)
_READ_TAGS = [tag for _, tag in _FIELD_TAGS]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        s = value.decode("latin-1") if isinstance(value, bytes) else value
        return s.strip(" \x00")
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_text(v) for v in value)
    return str(value).strip(" \x00")


def fields_from_dataset(ds: Dataset) -> InstanceFields:
    """Extract the indexed attributes from a (possibly partial) decoded data set."""
    values: dict[str, str] = {}
    for name, tag in _FIELD_TAGS:
        elem = ds.get(tag)
        values[name] = "" if elem is None else _text(elem.value)
    return InstanceFields(**values)


# --- fast header scan (the C-STORE hot path) ---------------------------------------------------
# The indexed tags all lie at or below (0020,0013), near the start of a data set.  For Implicit
# and Explicit VR Little Endian, walk the element headers (PS3.5 7.1) of the first bytes of the
# encoded data set, skip values and undefined-length sequences (PS3.5 7.5), keep the raw values
# of the wanted tags and decode only those.  Anything unusual (big endian, deflate, a character
# set other than the default / Latin-1 / UTF-8, the scan running past the bytes given, deep
# nesting) returns None and the caller falls back to pydicom.

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE_LIKE_EXCLUDED = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})
_TAG_HDR = struct.Struct("<HHI")  # implicit VR: group, element, 32-bit length
_EXPL_HDR = struct.Struct("<HH2sH")  # explicit VR, short form
_U32 = struct.Struct("<I")
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_WANTED: dict[int, str] = {int(tag): name for name, tag in _FIELD_TAGS}
_MAX_WANTED = max(_WANTED)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_SIMPLE_CHARSETS = {
    "": "latin-1",
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}


def _header(buf: memoryview, pos: int, implicit: bool) -> tuple[int, int, int] | None:
    """(tag, value length, header size) at ``pos``, or None past the end."""
    end = len(buf)
    if pos + 8 > end:
        return None
    if implicit:
        group, elem, length = _TAG_HDR.unpack_from(buf, pos)
        return (group << 16) | elem, length, 8
    group, elem, vr, length = _EXPL_HDR.unpack_from(buf, pos)
    if group == 0xFFFE:  # item / delimiters have no VR (PS3.5 7.5)
        return (group << 16) | elem, _U32.unpack_from(buf, pos + 4)[0], 8
    if vr in _LONG_VRS:
        if pos + 12 > end:
            return None
        return (group << 16) | elem, _U32.unpack_from(buf, pos + 8)[0], 12
    return (group << 16) | elem, length, 8


def _skip_undefined(buf: memoryview, pos: int, implicit: bool, depth: int) -> int | None:
    """Position after the delimiter closing an undefined-length sequence or item content."""
    if depth > 16:
        return None
    while True:
        h = _header(buf, pos, implicit)
        if h is None:
            return None
        tag, length, size = h
        pos += size
        if tag in (_SEQ_END, _ITEM_END):
            return pos
        if length == _UNDEFINED:
            # an item of undefined length, or a nested undefined-length sequence in it
            nxt = _skip_undefined(buf, pos, implicit, depth + 1)
            if nxt is None:
                return None
            pos = nxt
        else:
            pos += length
        if pos > len(buf):
            return None


def scan_instance_fields(
    data: bytes | bytearray | memoryview, transfer_syntax: str, *, whole: bool = True
) -> InstanceFields | None:
    """The indexed attributes from the start of an encoded data set (no file meta), without
    pydicom; None when this fast path does not apply (see above).  ``whole``: ``data`` is the
    entire data set, not just its first bytes."""
    if transfer_syntax in _EXPLICIT_LE_LIKE_EXCLUDED:
        return None
    implicit = transfer_syntax == _IMPLICIT_LE
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    raw: dict[str, bytes] = {}
    pos = 0
    end = len(buf)
    complete = False
    while True:
        h = _header(buf, pos, implicit)
        if h is None:
            complete = whole and pos == end  # the whole data set was scanned
            break
        tag, length, size = h
        if tag > _MAX_WANTED:
            complete = True
            break
        pos += size
        if length == _UNDEFINED:
            nxt = _skip_undefined(buf, pos, implicit, 0)
            if nxt is None:
                return None
            pos = nxt
            continue
        if pos + length > end:
            return None
        name = _WANTED.get(tag)
        if name is not None:
            raw[name] = bytes(buf[pos : pos + length])
        pos += length
    if not complete:
        return None
    charset = raw.get("specific_character_set", b"").decode("latin-1").strip(" \x00")
    codec = _SIMPLE_CHARSETS.get(charset)
    if codec is None:
        return None
    try:
        values = {k: v.decode(codec).strip(" \x00") for k, v in raw.items()}
    except UnicodeDecodeError:
        return None
    values["specific_character_set"] = charset
    for required in ("sop_instance_uid", "sop_class_uid", "study_instance_uid"):
        values.setdefault(required, "")
    values.setdefault("series_instance_uid", "")
    return InstanceFields(**values)


def read_instance_fields(path: str | os.PathLike[str]) -> tuple[InstanceFields, str]:
    """(fields, transfer syntax UID) of a Part 10 file, reading no further than Pixel Data."""
    ds = dcmread(path, stop_before_pixels=True, specific_tags=_READ_TAGS)
    ts = ds.file_meta.get("TransferSyntaxUID", "") if hasattr(ds, "file_meta") else ""
    return fields_from_dataset(ds), _text(ts)


class RetrieveItem(NamedTuple):
    """One instance to send for C-GET / C-MOVE."""

    sop_class_uid: str
    sop_instance_uid: str
    path: str
    transfer_syntax_uid: str


class RetrieveSet:
    """The instances a C-GET / C-MOVE selected (:meth:`ArchiveIndex.retrieve_set`): counted
    and described by SQL, iterated page by page (any thread)."""

    _FROM_WHERE = "SELECT {cols} FROM " + (
        "instance i JOIN series se ON i.series_fk = se.pk "
        "JOIN study st ON se.study_fk = st.pk JOIN patient p ON st.patient_fk = p.pk"
    )

    def __init__(self, index: ArchiveIndex, where: list[str], params: list[object]) -> None:
        self.index = index
        self.where = where
        self.params = params
        self.count: int = int(index.select(self._FROM_WHERE.format(cols="COUNT(*)"), where,
                                           params)[0][0])  # fmt: skip

    def pairs(self) -> list[tuple[str, str]]:
        """The distinct (SOP class UID, stored transfer syntax UID) of the instances."""
        sql = self._FROM_WHERE.format(cols="DISTINCT i.sop_class_uid, i.transfer_syntax")
        return [(str(a), str(b or "")) for a, b in self.index.select(sql, self.where, self.params)]

    def __iter__(self) -> Iterator[RetrieveItem]:
        cols = "i.sop_class_uid, i.sop_uid, i.path, i.transfer_syntax, i.pk"
        head = self._FROM_WHERE.format(cols=cols)
        for row in self.index.pages(head, self.where, self.params, "i.pk"):
            yield RetrieveItem(row[0], row[1], row[2], row[3])


_SCHEMA = """
CREATE TABLE IF NOT EXISTS patient (
    pk INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL UNIQUE,
    patient_name TEXT NOT NULL DEFAULT '',
    patient_name_fold TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS patient_name_ix ON patient(patient_name_fold);
CREATE TABLE IF NOT EXISTS study (
    pk INTEGER PRIMARY KEY,
    patient_fk INTEGER NOT NULL REFERENCES patient(pk),
    study_uid TEXT NOT NULL UNIQUE,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    study_time_norm TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT '',
    referring_physician_fold TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS study_patient_ix ON study(patient_fk);
CREATE INDEX IF NOT EXISTS study_date_ix ON study(study_date);
CREATE INDEX IF NOT EXISTS study_accession_ix ON study(accession_number);
CREATE TABLE IF NOT EXISTS series (
    pk INTEGER PRIMARY KEY,
    study_fk INTEGER NOT NULL REFERENCES study(pk),
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL DEFAULT '',
    series_number INTEGER,
    series_description TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS series_study_ix ON series(study_fk);
CREATE INDEX IF NOT EXISTS series_modality_ix ON series(modality);
CREATE TABLE IF NOT EXISTS instance (
    pk INTEGER PRIMARY KEY,
    series_fk INTEGER NOT NULL REFERENCES series(pk),
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    path TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    charset TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS instance_series_ix ON instance(series_fk);
CREATE INDEX IF NOT EXISTS instance_class_ix ON instance(sop_class_uid);
CREATE TABLE IF NOT EXISTS integrity (
    sop_uid TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    stored_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS integrity_time_ix ON integrity(stored_at);
"""

_UPSERT_PATIENT = """
INSERT INTO patient (patient_id, patient_name, patient_name_fold, birth_date, sex, charset)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(patient_id) DO UPDATE SET patient_name = excluded.patient_name,
    patient_name_fold = excluded.patient_name_fold, birth_date = excluded.birth_date,
    sex = excluded.sex, charset = excluded.charset
RETURNING pk
"""
_UPSERT_STUDY = """
INSERT INTO study (patient_fk, study_uid, study_date, study_time, study_time_norm,
    accession_number, study_id, study_description, referring_physician,
    referring_physician_fold, charset)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(study_uid) DO UPDATE SET patient_fk = excluded.patient_fk,
    study_date = excluded.study_date, study_time = excluded.study_time,
    study_time_norm = excluded.study_time_norm, accession_number = excluded.accession_number,
    study_id = excluded.study_id, study_description = excluded.study_description,
    referring_physician = excluded.referring_physician,
    referring_physician_fold = excluded.referring_physician_fold, charset = excluded.charset
RETURNING pk
"""
_UPSERT_SERIES = """
INSERT INTO series (study_fk, series_uid, modality, series_number, series_description, charset)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(series_uid) DO UPDATE SET study_fk = excluded.study_fk,
    modality = excluded.modality, series_number = excluded.series_number,
    series_description = excluded.series_description, charset = excluded.charset
RETURNING pk
"""
_UPSERT_INSTANCE = """
INSERT INTO instance (series_fk, sop_uid, sop_class_uid, instance_number, path,
    transfer_syntax, size, charset)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(sop_uid) DO UPDATE SET series_fk = excluded.series_fk,
    sop_class_uid = excluded.sop_class_uid, instance_number = excluded.instance_number,
    path = excluded.path, transfer_syntax = excluded.transfer_syntax, size = excluded.size,
    charset = excluded.charset
"""

_FROM: dict[Level, str] = {
    Level.PATIENT: "patient p",
    Level.STUDY: "study st JOIN patient p ON st.patient_fk = p.pk",
    Level.SERIES: (
        "series se JOIN study st ON se.study_fk = st.pk JOIN patient p ON st.patient_fk = p.pk"
    ),
    Level.IMAGE: (
        "instance i JOIN series se ON i.series_fk = se.pk "
        "JOIN study st ON se.study_fk = st.pk JOIN patient p ON st.patient_fk = p.pk"
    ),
}
_ALIAS: dict[Level, str] = {
    Level.PATIENT: "p",
    Level.STUDY: "st",
    Level.SERIES: "se",
    Level.IMAGE: "i",
}
# A representative instance's file, for keys that are not index columns.
_REPRESENTATIVE_PATH: dict[Level, str] = {
    Level.PATIENT: (
        "(SELECT x.path FROM instance x JOIN series y ON x.series_fk = y.pk "
        "JOIN study z ON y.study_fk = z.pk WHERE z.patient_fk = p.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.STUDY: (
        "(SELECT x.path FROM instance x JOIN series y ON x.series_fk = y.pk "
        "WHERE y.study_fk = st.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.SERIES: (
        "(SELECT x.path FROM instance x WHERE x.series_fk = se.pk ORDER BY x.pk DESC LIMIT 1)"
    ),
    Level.IMAGE: "i.path",
}
# Aggregates that can be matched: an entity matches when one of its children matches.
_EXISTS_MATCH: dict[str, tuple[str, str, str]] = {
    "ModalitiesInStudy": (
        "EXISTS (SELECT 1 FROM series x WHERE x.study_fk = st.pk AND {cond})",
        "CS",
        "x.modality",
    ),
    "SOPClassesInStudy": (
        "EXISTS (SELECT 1 FROM instance x JOIN series y ON x.series_fk = y.pk "
        "WHERE y.study_fk = st.pk AND {cond})",
        "UI",
        "x.sop_class_uid",
    ),
}

_TAG_QR_LEVEL = BaseTag(0x00080052)
_TAG_CHARSET = BaseTag(0x00080005)
_TAG_RETRIEVE_AE = BaseTag(0x00080054)
_TAG_AVAILABILITY = BaseTag(0x00080056)

# Output conversions: the value pydicom would produce itself, so DataElement can skip it.
_Converter = Callable[[Any], Any]


def _conv_text(v: Any) -> Any:
    if v is None or v == "":
        return ""
    if isinstance(v, str) and "\\" in v:
        return MultiValue(str, v.split("\\"))
    return v if isinstance(v, str) else str(v)


def _conv_pn(v: Any) -> Any:
    return PersonName(v) if v else ""


def _conv_is(v: Any) -> Any:
    if v is None or v == "":
        return None
    return IS(v)


def _converter(attr: Attribute) -> _Converter:
    if attr.vr == "PN":
        return _conv_pn
    if attr.vr == "IS":
        return _conv_is
    return _conv_text


@dataclass(frozen=True, slots=True)
class _Output:
    tag: BaseTag
    vr: str
    column: int  # index into the row, -1: always empty
    convert: _Converter


@dataclass(frozen=True, slots=True)
class _Extra:
    """A key answered from the stored file."""

    tag: BaseTag
    vr: str
    predicate: Callable[[Any], bool] | None  # None: return key only


class ArchiveIndex:
    """The SQLite index of an archive; thread-safe (one connection per thread)."""

    def __init__(
        self, path: str | os.PathLike[str], *, durable: bool = False, timeout: float = 30.0
    ) -> None:
        self.path = os.fspath(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError("ArchiveIndex needs a file path (connections are per thread)")
        self.durable = durable
        self._timeout = timeout
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        with self._write_lock:
            conn.executescript(_SCHEMA)

    # --- connections -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise sqlite3.ProgrammingError("ArchiveIndex is closed")
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-16000")
        self._local.conn = conn
        with self._conn_lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (of every thread)."""
        self._closed = True
        with self._conn_lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __enter__(self) -> ArchiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------------

    def add_instance(
        self,
        ds_or_fields: Dataset | InstanceFields,
        path: str,
        transfer_syntax: str,
        size: int,
        checksum: str | None = None,
    ) -> str | None:
        """Index one stored instance (upsert: a duplicate SOP Instance UID replaces the earlier
        one).  Returns the path of the replaced instance, or None if it was new."""
        return self.add_instances([(ds_or_fields, path, transfer_syntax, size)], [checksum])[0]

    def add_instances(
        self,
        items: Iterable[tuple[Dataset | InstanceFields, str, str, int]],
        checksums: Iterable[str | None] | None = None,
    ) -> list[str | None]:
        """:meth:`add_instance` for many, in one transaction. ``checksums``: the files'
        :func:`~dicomnet.archive.store.quick_hash`, kept (with the time) for the start-up
        check after a crash."""
        rows = [
            (f if isinstance(f, InstanceFields) else fields_from_dataset(f), p, ts, n)
            for f, p, ts, n in items
        ]
        sums = list(checksums) if checksums is not None else [None] * len(rows)
        conn = self._conn()
        replaced: list[str | None] = []
        now = time.time()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for (fields, path, ts, size), checksum in zip(rows, sums, strict=True):
                    replaced.append(self._upsert(conn, fields, path, ts, size))
                    if checksum:
                        conn.execute(
                            "INSERT OR REPLACE INTO integrity VALUES (?, ?, ?)",
                            (fields.sop_instance_uid, checksum, now),
                        )
                    else:
                        conn.execute("DELETE FROM integrity WHERE sop_uid = ?",
                                     (fields.sop_instance_uid,))  # fmt: skip
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return replaced

    @staticmethod
    def _upsert(
        conn: sqlite3.Connection, f: InstanceFields, path: str, ts: str, size: int
    ) -> str | None:
        if not f.sop_instance_uid or not f.study_instance_uid or not f.series_instance_uid:
            raise QueryError("instance lacks SOP Instance / Study / Series Instance UID")
        old = conn.execute(
            "SELECT series_fk, path FROM instance WHERE sop_uid = ?", (f.sop_instance_uid,)
        ).fetchone()
        old_series = conn.execute(
            "SELECT pk, study_fk FROM series WHERE series_uid = ?", (f.series_instance_uid,)
        ).fetchone()
        old_study = conn.execute(
            "SELECT pk, patient_fk FROM study WHERE study_uid = ?", (f.study_instance_uid,)
        ).fetchone()
        cs = f.specific_character_set
        patient_pk = conn.execute(
            _UPSERT_PATIENT,
            (
                f.patient_id,
                f.patient_name,
                matching.fold_pn(f.patient_name),
                matching.normalize_date(f.patient_birth_date) or f.patient_birth_date,
                f.patient_sex,
                cs,
            ),
        ).fetchone()[0]
        study_pk = conn.execute(
            _UPSERT_STUDY,
            (
                patient_pk,
                f.study_instance_uid,
                matching.normalize_date(f.study_date) or f.study_date,
                f.study_time,
                matching.normalize_time(f.study_time),
                f.accession_number,
                f.study_id,
                f.study_description,
                f.referring_physician_name,
                matching.fold_pn(f.referring_physician_name),
                cs,
            ),
        ).fetchone()[0]
        series_pk = conn.execute(
            _UPSERT_SERIES,
            (
                study_pk,
                f.series_instance_uid,
                f.modality,
                _int_or_none(f.series_number),
                f.series_description,
                cs,
            ),
        ).fetchone()[0]
        conn.execute(
            _UPSERT_INSTANCE,
            (
                series_pk,
                f.sop_instance_uid,
                f.sop_class_uid,
                _int_or_none(f.instance_number),
                path,
                ts,
                size,
                cs,
            ),
        )
        # Entities left without children by a move are removed.
        if old is not None and old[0] != series_pk:
            _prune_series(conn, old[0])
        if old_series is not None and old_series[1] != study_pk:
            _prune_study(conn, old_series[1])
        if old_study is not None and old_study[1] != patient_pk:
            _prune_patient(conn, old_study[1])
        return None if old is None else str(old[1])

    def remove_instance(self, sop_instance_uid: str) -> str | None:
        """Drop an instance (and parents left empty); returns its path, or None if unknown."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "DELETE FROM instance WHERE sop_uid = ? RETURNING series_fk, path",
                    (sop_instance_uid,),
                ).fetchone()
                conn.execute("DELETE FROM integrity WHERE sop_uid = ?", (sop_instance_uid,))
                if row is not None:
                    _prune_series(conn, row[0])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return None if row is None else str(row[1])

    # --- simple reads ------------------------------------------------------------------------------

    def instance_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM instance").fetchone()[0])

    def get_instance(self, sop_instance_uid: str) -> RetrieveItem | None:
        row = (
            self._conn()
            .execute(
                "SELECT sop_class_uid, sop_uid, path, transfer_syntax FROM instance "
                "WHERE sop_uid = ?",
                (sop_instance_uid,),
            )
            .fetchone()
        )
        return None if row is None else RetrieveItem(*row)

    def iter_stored(self) -> Iterator[tuple[str, str, int, str | None, float]]:
        """(SOP Instance UID, path, size, checksum or None, time stored or 0) of every
        instance, for the start-up check."""
        rows = self._conn().execute(
            "SELECT i.sop_uid, i.path, i.size, g.checksum, g.stored_at FROM instance i "
            "LEFT JOIN integrity g ON g.sop_uid = i.sop_uid"
        ).fetchall()
        for uid, path, size, checksum, stored_at in rows:
            yield str(uid), str(path), int(size), checksum, float(stored_at or 0.0)

    def pragma(self, name: str) -> Any:
        """The value of SQLite's ``PRAGMA name`` on this thread's connection (diagnostics:
        e.g. ``synchronous`` is 2 (FULL) for a durable index)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a pragma name: {name!r}")
        row = self._conn().execute(f"PRAGMA {name}").fetchone()
        return None if row is None else row[0]

    def iter_paths(self) -> Iterator[tuple[str, str]]:
        """(SOP Instance UID, path) of every indexed instance (a snapshot)."""
        rows = self._conn().execute("SELECT sop_uid, path FROM instance").fetchall()
        return iter(rows)

    # --- query / retrieve --------------------------------------------------------------------------

    def query(
        self,
        level: Level | str | None,
        identifier: Dataset,
        model: Model | str = Model.STUDY_ROOT,
        *,
        retrieve_ae_title: str | None = None,
    ) -> Iterator[Dataset]:
        """C-FIND: the response identifiers for ``identifier`` (PS3.4 C.4.1.3.1).

        ``level``: a :class:`Level`, its name, or None to read (0008,0052) from the identifier.
        ``model``: :class:`Model` or ``'PATIENT'``/``'STUDY'``.  Validation happens and the rows
        are fetched before this returns (a bad identifier raises :class:`QueryError` here, not
        at the first ``next()``); the Datasets are built as the iterator is consumed, so a
        C-CANCEL stops the work at once.  Safe to call from any thread.
        """
        try:
            return self._query(level, identifier, model, retrieve_ae_title=retrieve_ae_title)
        except QueryError:
            raise
        except Exception as exc:
            # Trust boundary: an identifier pydicom cannot even convert (a malformed raw value,
            # a broken sequence) is answered "unable to process", never with a traceback.
            raise QueryError(f"invalid identifier: {exc}", STATUS_UNABLE_TO_PROCESS) from exc

    def instances_for(
        self,
        level: Level | str | None,
        identifier: Dataset,
        model: Model | str = Model.STUDY_ROOT,
    ) -> list[RetrieveItem]:
        """C-GET / C-MOVE: the instances selected by the unique keys of ``identifier``
        (PS3.4 C.4.2.2.1 / C.4.3.2.1); other keys are ignored.  :class:`QueryError` (0xA900)
        when a unique key above the level is not a single value or the level's own unique key
        is missing, universal or wildcarded."""
        try:
            return self._instances_for(level, identifier, model)
        except QueryError:
            raise
        except Exception as exc:  # trust boundary, as in query()
            raise QueryError(f"invalid identifier: {exc}", STATUS_UNABLE_TO_PROCESS) from exc

    def _query(
        self,
        level: Level | str | None,
        identifier: Dataset,
        model: Model | str = Model.STUDY_ROOT,
        *,
        retrieve_ae_title: str | None = None,
    ) -> Iterator[Dataset]:
        """C-FIND: the response identifiers for ``identifier`` (PS3.4 C.4.1.3.1).

        Validation happens and the rows are fetched before this returns (a bad identifier
        raises :class:`QueryError` here, not at the first ``next()``); the Datasets are built
        as the iterator is consumed, so a C-CANCEL stops the work at once.
        """
        lvl, mdl = self._level_model(level, identifier, model)
        self._check_hierarchy(lvl, mdl, identifier, retrieve=False)

        alias = _ALIAS[lvl]
        select: list[str] = [f"{alias}.charset"]
        where: list[str] = []
        params: list[object] = []
        outputs: list[_Output] = []
        extras: list[_Extra] = []
        seen: set[int] = set()

        def add_output(attr: Attribute) -> None:
            expr = attr.column if attr.column is not None else attr.aggregate
            assert expr is not None
            select.append(expr)
            outputs.append(_Output(BaseTag(attr.tag), attr.vr, len(select) - 1, _converter(attr)))

        for elem in identifier:
            tag = int(elem.tag)
            if tag in NON_KEY_TAGS or tag & 0xFFFF == 0 or tag >> 16 in (0x0000, 0x0002):
                continue
            seen.add(tag)
            attr = ATTRIBUTES_BY_TAG.get(tag)
            if attr is None:
                vr = str(elem.VR)
                if vr == "SQ":
                    extras.append(_Extra(BaseTag(tag), vr, None))
                else:
                    values = matching.key_values(elem.value)
                    pred = matching.python_matcher(vr, values) if values else None
                    extras.append(_Extra(BaseTag(tag), vr, pred))
                continue
            if effective_level(attr, mdl) > lvl:
                # A key below the query level: returned empty, not matched.
                outputs.append(_Output(BaseTag(tag), attr.vr, -1, _converter(attr)))
                continue
            add_output(attr)
            cond = self._condition(attr, elem.value)
            if cond is not None:
                where.append(cond[0])
                params.extend(cond[1])

        unique = UNIQUE_KEYS[lvl]
        if unique.tag not in seen:  # the query-level unique key is always returned
            add_output(unique)
        path_col = -1
        if extras:
            select.append(_REPRESENTATIVE_PATH[lvl])
            path_col = len(select) - 1

        rows = self.pages(f"SELECT {', '.join(select)}, {alias}.pk FROM {_FROM[lvl]}", where,
                           params, f"{alias}.pk")  # fmt: skip
        # Instance Availability (0008,0056), when asked: everything stored here is ONLINE.
        availability = _TAG_AVAILABILITY in identifier
        return self._responses(
            rows, lvl, outputs, extras, path_col, retrieve_ae_title, availability
        )

    def retrieve_set(
        self,
        level: Level | str | None,
        identifier: Dataset,
        model: Model | str = Model.STUDY_ROOT,
    ) -> RetrieveSet:
        """:meth:`instances_for` without the list: the number of instances, their (SOP class,
        transfer syntax) pairs and the instances themselves, read page by page as they are
        iterated (a slow reader holds one page, not the whole study). Same errors."""
        try:
            where, params = self._retrieve_where(level, identifier, model)
            return RetrieveSet(self, where, params)
        except QueryError:
            raise
        except Exception as exc:  # trust boundary, as in query()
            raise QueryError(f"invalid identifier: {exc}", STATUS_UNABLE_TO_PROCESS) from exc

    def _instances_for(
        self,
        level: Level | str | None,
        identifier: Dataset,
        model: Model | str = Model.STUDY_ROOT,
    ) -> list[RetrieveItem]:
        """C-GET / C-MOVE: the instances selected by the unique keys of ``identifier``."""
        where, params = self._retrieve_where(level, identifier, model)
        sql = (
            "SELECT i.sop_class_uid, i.sop_uid, i.path, i.transfer_syntax FROM "
            + _FROM[Level.IMAGE]
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY i.pk"
        return [RetrieveItem(*row) for row in self._fetch(sql, params)]

    def _retrieve_where(
        self, level: Level | str | None, identifier: Dataset, model: Model | str
    ) -> tuple[list[str], list[object]]:
        """The WHERE conditions selecting a retrieve's instances (unique keys only)."""
        lvl, mdl = self._level_model(level, identifier, model)
        self._check_hierarchy(lvl, mdl, identifier, retrieve=True)
        where: list[str] = []
        params: list[object] = []
        for upper in levels_of(mdl):
            if upper > lvl:
                break
            attr = UNIQUE_KEYS[upper]
            elem = identifier.get(BaseTag(attr.tag))
            if elem is None:
                continue
            cond = self._condition(attr, elem.value)
            if cond is not None:
                where.append(cond[0])
                params.extend(cond[1])
        return where, params

    def select(self, sql: str, where: list[str], params: list[object]) -> list[Any]:
        """The rows of ``sql`` (a SELECT ... FROM) with ``where`` AND-ed (QueryError on a
        database error)."""
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._fetch(sql, params)

    def pages(self, head: str, where: list[str], params: list[object], key: str) -> Iterator[Any]:
        """The rows of ``head`` (SELECT ..., key FROM ...) with ``where``, in ``key`` order,
        :data:`PAGE_ROWS` per statement (keyset paging: ``key > last``). The first page is read
        now (errors raise here); the others as the iterator is consumed."""
        cond = " AND ".join([*where, f"{key} > ?"])
        sql = f"{head} WHERE {cond} ORDER BY {key} LIMIT {PAGE_ROWS}"
        first = self._fetch(sql, [*params, 0])  # INTEGER PRIMARY KEYs start at 1
        return self._more_pages(sql, params, first)

    def _more_pages(self, sql: str, params: list[object], page: list[Any]) -> Iterator[Any]:
        while page:
            yield from page
            if len(page) < PAGE_ROWS:
                return
            page = self._fetch(sql, [*params, page[-1][-1]])

    def _fetch(self, sql: str, params: list[object]) -> list[Any]:
        if len(params) > MAX_PARAMETERS:
            raise QueryError(
                f"identifier too large ({len(params)} values)", STATUS_UNABLE_TO_PROCESS
            )
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise QueryError(f"query failed: {exc}", STATUS_UNABLE_TO_PROCESS) from exc

    # --- query helpers -----------------------------------------------------------------------------

    @staticmethod
    def _level_model(
        level: Level | str | None, identifier: Dataset, model: Model | str
    ) -> tuple[Level, Model]:
        mdl = parse_model(model)
        if level is None:
            elem = identifier.get(_TAG_QR_LEVEL)
            if elem is None or not elem.value:
                raise QueryError("Query/Retrieve Level (0008,0052) missing", _A900)
            level = str(elem.value)
        lvl = parse_level(level)
        if lvl not in levels_of(mdl):
            raise QueryError(f"level {lvl.name} does not exist in the {mdl.name} model", _A900)
        return lvl, mdl

    @staticmethod
    def _check_hierarchy(lvl: Level, mdl: Model, identifier: Dataset, *, retrieve: bool) -> None:
        # PS3.4 C.4.1.2.1 / C.4.2.2.1: the unique key of each level above the query level is
        # given with single value matching.
        for upper in levels_of(mdl):
            if upper >= lvl:
                break
            attr = UNIQUE_KEYS[upper]
            elem = identifier.get(BaseTag(attr.tag))
            values = [] if elem is None else matching.key_values(elem.value)
            if len(values) != 1 or "*" in values[0] or "?" in values[0]:
                raise QueryError(
                    f"{attr.keyword} must be a single value at {lvl.name} level ({mdl.name} model)",
                    _A900,
                )
        if retrieve:
            # The retrieve level's unique key selects what is sent: universal is refused.
            attr = UNIQUE_KEYS[lvl]
            elem = identifier.get(BaseTag(attr.tag))
            values = [] if elem is None else matching.key_values(elem.value)
            if not values or any("*" in v or "?" in v for v in values):
                raise QueryError(f"{attr.keyword} must be given to retrieve at {lvl.name}", _A900)

    @staticmethod
    def _condition(attr: Attribute, value: Any) -> matching.Condition | None:
        values = matching.key_values(value)
        if not values:
            return None
        exists = _EXISTS_MATCH.get(attr.keyword)
        if exists is not None:
            template, vr, column = exists
            cond = matching.sql_condition(vr, column, values)
            if cond is None:
                return None
            return template.format(cond=cond[0]), cond[1]
        if attr.column is None:
            return None  # counts are return keys only
        matched_by = attr.matched_by
        assert matched_by is not None
        return matching.sql_condition(
            attr.vr, matched_by, values, integer=attr.integer, case_insensitive=attr.vr == "PN"
        )

    @staticmethod
    def _responses(
        rows: Iterable[Any],
        lvl: Level,
        outputs: list[_Output],
        extras: list[_Extra],
        path_col: int,
        retrieve_ae_title: str | None,
        availability: bool = False,
    ) -> Iterator[Dataset]:
        level_name = lvl.name
        file_cache: dict[str, Dataset | None] = {}
        extra_tags = [e.tag for e in extras]
        ignore = pydicom_config.IGNORE
        for row in rows:
            stored: Dataset | None = None
            if extras:
                path = row[path_col]
                if path not in file_cache:
                    try:
                        file_cache[path] = dcmread(
                            path, stop_before_pixels=True, specific_tags=extra_tags
                        )
                    except Exception:
                        file_cache[path] = None
                    if len(file_cache) > 256:
                        file_cache.pop(next(iter(file_cache)))
                stored = file_cache[path]
                if not _extras_match(extras, stored):
                    continue
            ds = Dataset()
            d = ds._dict
            charset = row[0]
            if charset:
                d[_TAG_CHARSET] = DataElement(
                    _TAG_CHARSET, "CS", _conv_text(charset), already_converted=True
                )
            d[_TAG_QR_LEVEL] = DataElement(_TAG_QR_LEVEL, "CS", level_name, already_converted=True)
            if availability:
                d[_TAG_AVAILABILITY] = DataElement(
                    _TAG_AVAILABILITY, "CS", "ONLINE", already_converted=True
                )
            if retrieve_ae_title:
                d[_TAG_RETRIEVE_AE] = DataElement(
                    _TAG_RETRIEVE_AE, "AE", retrieve_ae_title, already_converted=True
                )
            for out in outputs:
                value = out.convert(row[out.column]) if out.column >= 0 else out.convert(None)
                d[out.tag] = DataElement(
                    out.tag, out.vr, value, already_converted=True, validation_mode=ignore
                )
            for extra in extras:
                elem = None if stored is None else stored.get(extra.tag)
                if elem is not None:
                    d[extra.tag] = _copy_element(elem)
                else:
                    d[extra.tag] = DataElement(extra.tag, extra.vr, None, validation_mode=ignore)
            yield ds


def _extras_match(extras: list[_Extra], stored: Dataset | None) -> bool:
    for extra in extras:
        if extra.predicate is None:
            continue
        elem = None if stored is None else stored.get(extra.tag)
        if elem is None or not extra.predicate(elem.value):
            return False
    return True


def _copy_element(elem: DataElement) -> DataElement:
    if elem.VR == "SQ":
        import copy

        return copy.deepcopy(elem)
    return DataElement(elem.tag, elem.VR, elem.value, already_converted=True)


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _prune_series(conn: sqlite3.Connection, series_pk: int) -> None:
    row = conn.execute(
        "DELETE FROM series WHERE pk = ? AND NOT EXISTS "
        "(SELECT 1 FROM instance WHERE series_fk = ?) RETURNING study_fk",
        (series_pk, series_pk),
    ).fetchone()
    if row is not None:
        _prune_study(conn, row[0])


def _prune_study(conn: sqlite3.Connection, study_pk: int) -> None:
    row = conn.execute(
        "DELETE FROM study WHERE pk = ? AND NOT EXISTS "
        "(SELECT 1 FROM series WHERE study_fk = ?) RETURNING patient_fk",
        (study_pk, study_pk),
    ).fetchone()
    if row is not None:
        _prune_patient(conn, row[0])


def _prune_patient(conn: sqlite3.Connection, patient_pk: int) -> None:
    conn.execute(
        "DELETE FROM patient WHERE pk = ? AND NOT EXISTS (SELECT 1 FROM study WHERE patient_fk = ?)",
        (patient_pk, patient_pk),
    )
