#!/usr/bin/env python3
"""C-FIND latency of the archive at scale: an index of 1,000,000 instances, SQLite and
PostgreSQL, typical viewer queries over a real association.

    python bench/scale.py [--instances N] [--backends sqlite,postgresql] [--reps 200]
                          [--pg-url URL] [--explain] [--out FILE]

(also ``bench/run --only m``, with the default sizes).

Theory of operation
-------------------
*Generation.* :class:`Spec` fixes the size; :func:`plan` draws, from one seeded random
generator, the patients (one per 50 instances: names from a pool of about 1000 surnames, so
a surname prefix such as ``SMITH*`` finds on the order of 100 studies), the studies (one per
10 instances, five per patient on average, dates spread over ten years 2015-2024, accession
numbers, a kind -- CT, MR, CR, DX, US, MG, PT/CT, NM, XA -- that sets their 2 or 3 series'
modalities, some with an SR series) and the instance count of every series (by modality: a CT
series has many images, a CR one), scaled so that the total is exactly the size asked. UIDs,
Patient IDs and accession numbers are functions of the row's number (:func:`study_uid`...),
so the queries know their keys without reading the database. :func:`batches` turns the plan
into the rows :class:`~dicomnet.archive.index.ArchiveIndex` would have written for the same
instances -- the same columns, the matching columns computed by the same functions of
:mod:`dicomnet.archive.matching` -- 5000 studies at a time. The paths name files that do not
exist (C-FIND never reads them). :func:`load_sqlite` inserts each batch with ``executemany``
in one transaction, :func:`load_postgres` with ``COPY``, then sets the identity sequences past
the rows loaded and runs ``VACUUM ANALYZE``; both store the storage folder as the index's
``root`` (so qrscp does not rebase a million paths) and mark the index complete in ``meta``
(``bench_scale``): a SQLite index is cached under ``.cache/scale/`` and reused.

*Measurement.* :func:`measure` starts ``dicomnet qrscp`` on the index (with the clean-stop
marker in place: the start-up check must not walk a million missing files), opens one
association and sends each query of :data:`QUERIES` ``reps`` times (after 5 discarded
warm-ups), a different key value each time, timing from the request to the final response
with every match read. :func:`explain` captures the statements the archive runs for a query
(:func:`dicomnet.archive.query.find` against a recording source, each statement built by
:func:`dicomnet.archive.index.page_sql` as the index builds it) and shows their plans:
``EXPLAIN QUERY PLAN`` (SQLite), ``EXPLAIN (ANALYZE, BUFFERS)`` (PostgreSQL, the statement as
:func:`dicomnet.archive.backend.translate_sql` rewrites it, with the same bound values).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from dicomnet.archive import matching, query
from dicomnet.archive.backend import translate_sql
from dicomnet.archive.index import ArchiveIndex, Row, page_sql
from dicomnet.archive.ownership import ShutdownMarker, node_dir

HERE = Path(__file__).resolve().parent
CACHE = HERE.parent / ".cache" / "scale"
#: bump when the generated data changes (cached indexes are then made again)
GEN_VERSION = 1
BATCH_STUDIES = 5000
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"

# --- what is generated ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_COMMON = _words(
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ "
    "GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON WHITE HARRIS "
    "SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT TORRES NGUYEN "
    "HILL FLORES GREEN ADAMS NELSON BAKER HALL RIVERA CAMPBELL MITCHELL CARTER ROBERTS MÜLLER "
    "SCHMIDT SCHNEIDER FISCHER WEBER MEYER WAGNER BECKER SCHULZ HOFFMANN DUBOIS LEFEVRE ROSSI "
    "RUSSO FERRARI ESPOSITO BIANCHI ROMANO COLOMBO PEÑA GÓMEZ DÍAZ MORENO MUÑOZ ÁLVAREZ ROMERO "
    "NOWAK KOWALSKI WIŚNIEWSKI JANSEN DEVRIES BAKKER VISSER SMIT MEIJER DEBOER MULDER BJÖRK"
)
_SYLLABLES = _words("AR BEL CAR DEN EL FOR GAR HOL IN KER LAN MOR NEL OS PAR QUIN RAS SEL TON "
              "UL VAN WES ZAN BRO CHE DRA")  # fmt: skip
_MALE = _words("JOHN JAMES ROBERT MICHAEL WILLIAM DAVID RICHARD JOSEPH THOMAS CHARLES PETER PAUL "
         "MARK GEORGE KARL JÖRG LUCA PIERRE JAN OLE")  # fmt: skip
_FEMALE = _words("MARY PATRICIA JENNIFER LINDA ELIZABETH BARBARA SUSAN JESSICA SARAH KAREN ANNA "
           "MARIA LAURA EMMA SOFIA CHLOÉ JULIA INGE HELENA ZOË")  # fmt: skip
# kind: (weight, modalities of the series by count, descriptions)
_KINDS: dict[str, tuple[int, dict[int, tuple[str, ...]], tuple[str, ...]]] = {
    "CT": (30, {2: ("CT", "CT"), 3: ("CT", "CT", "CT")},
           ("CT CHEST W/O CONTRAST", "CT HEAD", "CT ABDOMEN PELVIS W CONTRAST", "CTA CHEST")),
    "MR": (20, {2: ("MR", "MR"), 3: ("MR", "MR", "MR")},
           ("MR BRAIN W/WO CONTRAST", "MR KNEE LEFT", "MR LUMBAR SPINE", "MR PROSTATE")),
    "CR": (15, {2: ("CR", "CR"), 3: ("CR", "CR", "CR")}, ("XR CHEST 2 VIEWS", "XR HAND")),
    "DX": (8, {2: ("DX", "DX"), 3: ("DX", "DX", "DX")}, ("XR KNEE 3 VIEWS", "XR SPINE")),
    "US": (10, {2: ("US", "US"), 3: ("US", "US", "US")}, ("US ABDOMEN", "US THYROID")),
    "MG": (7, {2: ("MG", "MG"), 3: ("MG", "MG", "MG")}, ("MAMMO SCREENING BILAT",)),
    "PT": (3, {2: ("PT", "CT"), 3: ("PT", "CT", "CT")}, ("PET/CT WHOLE BODY",)),
    "NM": (2, {2: ("NM", "NM"), 3: ("NM", "NM", "NM")}, ("NM BONE SCAN",)),
    "XA": (5, {2: ("XA", "XA"), 3: ("XA", "XA", "XA")}, ("CORONARY ANGIOGRAPHY",)),
}  # fmt: skip
# modality: (mean instances per series before scaling, SOP Class UID, typical size)
_MODALITY: dict[str, tuple[float, str, int]] = {
    "CT": (14.0, "1.2.840.10008.5.1.4.1.1.2", 526_000),
    "MR": (10.0, "1.2.840.10008.5.1.4.1.1.4", 135_000),
    "PT": (12.0, "1.2.840.10008.5.1.4.1.1.128", 70_000),
    "CR": (1.0, "1.2.840.10008.5.1.4.1.1.1", 8_400_000),
    "DX": (1.0, "1.2.840.10008.5.1.4.1.1.1.1", 9_000_000),
    "MG": (1.0, "1.2.840.10008.5.1.4.1.1.1.2", 30_000_000),
    "US": (4.0, "1.2.840.10008.5.1.4.1.1.6.1", 600_000),
    "NM": (2.0, "1.2.840.10008.5.1.4.1.1.20", 2_000_000),
    "XA": (6.0, "1.2.840.10008.5.1.4.1.1.12.1", 20_000_000),
    "SR": (1.0, "1.2.840.10008.5.1.4.1.1.88.22", 6_000),
}
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_CHARSET = "ISO_IR 192"
_FIRST_DAY = dt.date(2015, 1, 1)
_DAYS = 3653  # 2015-01-01 .. 2024-12-31
# UIDs under 2.25 (PS3.5 B.2: a UUID as a decimal integer), consecutive per table
_UID_BASE = {"study": 10**37, "series": 2 * 10**37, "instance": 3 * 10**37}


def study_uid(pk: int) -> str:
    return f"2.25.{_UID_BASE['study'] + pk}"


def series_uid(pk: int) -> str:
    return f"2.25.{_UID_BASE['series'] + pk}"


def sop_uid(pk: int) -> str:
    return f"2.25.{_UID_BASE['instance'] + pk}"


def patient_id(pk: int) -> str:
    return f"{(pk * 104_729) % 10**7 + 10**7}"  # a bijection on 1..10**7: unique, 8 digits


def accession(pk: int) -> str:
    return f"A{(pk * 7919) % 10**8:08d}"  # unique below 10**8


@dataclass(frozen=True)
class Spec:
    """The size of a generated index."""

    instances: int = 1_000_000
    seed: int = 17

    @property
    def studies(self) -> int:
        return max(1, self.instances // 10)

    @property
    def patients(self) -> int:
        return max(1, self.instances // 50)

    def key(self) -> str:
        return f"{self.instances}-s{self.seed}-g{GEN_VERSION}"


@dataclass
class Plan:
    """Everything drawn at random (small: no instance rows)."""

    spec: Spec
    patients: list[tuple[str, str, str]]  # (name, birth date, sex) of patient pk - 1
    study_patient: list[int]  # patient pk of study pk - 1
    study_kind: list[str]
    study_date: list[str]
    study_time: list[str]
    referring: list[str]
    series: list[list[tuple[str, int]]] = field(default_factory=list)  # (modality, instances)


def _surnames(rng: random.Random, n: int = 1000) -> list[str]:
    names = list(dict.fromkeys(_COMMON))
    made = set(names)
    while len(names) < n:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3))))
        if name not in made and not any(name.startswith(c) for c in _COMMON):
            made.add(name)
            names.append(name)
    return names


def plan(spec: Spec) -> Plan:
    """Draw the patients, studies and series of ``spec`` (see the module docstring)."""
    rng = random.Random(spec.seed)
    surnames = _surnames(rng)
    patients = []
    for _ in range(spec.patients):
        sex = rng.choice("MF")
        given = rng.choice(_MALE if sex == "M" else _FEMALE)
        middle = rng.choice(("", "", "A", "B", "C", "J", "M"))
        name = f"{rng.choice(surnames)}^{given}" + (f"^{middle}" if middle else "")
        birth = _FIRST_DAY - dt.timedelta(days=rng.randrange(365 * 90))
        patients.append((name, birth.strftime("%Y%m%d"), sex))
    owner = list(range(1, spec.patients + 1))[: spec.studies]
    owner += [rng.randrange(1, spec.patients + 1) for _ in range(spec.studies - len(owner))]
    rng.shuffle(owner)
    kinds, weights = list(_KINDS), [k[0] for k in _KINDS.values()]
    p = Plan(
        spec,
        patients,
        owner,
        rng.choices(kinds, weights, k=spec.studies),
        [],
        [],
        [f"{rng.choice(surnames)}^{rng.choice(_MALE + _FEMALE)}^^DR" for _ in range(300)],
    )
    for kind in p.study_kind:
        day = _FIRST_DAY + dt.timedelta(days=rng.randrange(_DAYS))
        p.study_date.append(day.strftime("%Y%m%d"))
        stamp = f"{rng.randrange(7, 21):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
        p.study_time.append(stamp + (f".{rng.randrange(1000):03d}" if rng.random() < 0.2 else ""))
        mods = list(_KINDS[kind][1][rng.choice((2, 3))])
        if kind in ("CT", "MR", "US") and rng.random() < 0.1:
            mods[-1] = "SR"
        p.series.append([(m, max(1, round(rng.expovariate(1 / _MODALITY[m][0])))) for m in mods])
    _scale_counts(p, rng)
    return p


def _scale_counts(p: Plan, rng: random.Random) -> None:
    """Make the instance counts add up to exactly ``spec.instances`` (at least 1 each)."""
    total = sum(n for s in p.series for _, n in s)
    factor = p.spec.instances / total
    for s in p.series:
        s[:] = [(m, max(1, round(n * factor))) for m, n in s]
    diff = p.spec.instances - sum(n for s in p.series for _, n in s)
    while diff:
        study = rng.randrange(len(p.series))
        j = rng.randrange(len(p.series[study]))
        m, n = p.series[study][j]
        step = 1 if diff > 0 else -1
        if n + step >= 1:
            p.series[study][j] = (m, n + step)
            diff -= step


@dataclass
class Batch:
    patients: list[tuple[object, ...]]
    studies: list[tuple[object, ...]]
    series: list[tuple[object, ...]]
    instances: list[tuple[object, ...]]


COLUMNS = {
    "patient": "pk, patient_id, issuer, patient_name, patient_name_fold, patient_name_fuzzy, "
    "birth_date, birth_date_norm, sex, charset",
    "study": "pk, patient_fk, study_uid, patient_id, issuer, patient_name, patient_name_fold, "
    "patient_name_fuzzy, birth_date, birth_date_norm, sex, study_date, study_date_norm, "
    "study_time, study_time_norm, study_datetime, timezone, accession_number, study_id, "
    "study_description, referring_physician, referring_physician_fold, "
    "referring_physician_fuzzy, charset",
    "series": "pk, study_fk, series_uid, modality, series_number, series_description, charset",
    "instance": "pk, series_fk, sop_uid, sop_class_uid, instance_number, path, "
    "transfer_syntax, size, charset, checksum, stored_at",
}


def batches(p: Plan, root: str) -> Iterator[Batch]:
    """The rows of the plan, :data:`BATCH_STUDIES` studies at a time (patients in the first)."""
    fold, fuzzy = matching.fold_pn, matching.fuzzy_pn
    norm_date, norm_time = matching.normalize_date, matching.normalize_time
    patients = [(pk, patient_id(pk), "", name, fold(name), fuzzy(name), birth,
                 norm_date(birth), sex, _CHARSET)
                for pk, (name, birth, sex) in enumerate(p.patients, 1)]  # fmt: skip
    series_pk = instance_pk = 0
    for first in range(0, p.spec.studies, BATCH_STUDIES):
        b = Batch(patients if first == 0 else [], [], [], [])
        for spk in range(first + 1, min(first + BATCH_STUDIES, p.spec.studies) + 1):
            pat = patients[p.study_patient[spk - 1] - 1]
            date, stime = p.study_date[spk - 1], p.study_time[spk - 1]
            dnorm, tnorm = norm_date(date), norm_time(stime)
            ref = p.referring[spk % len(p.referring)]
            kind = p.study_kind[spk - 1]
            descriptions = _KINDS[kind][2]
            suid = study_uid(spk)
            b.studies.append((spk, pat[0], suid, pat[1], "", pat[3], pat[4], pat[5], pat[6],
                              pat[7], pat[8], date, dnorm, stime, tnorm,
                              matching.combine_datetime(dnorm, tnorm), "", accession(spk),
                              str(spk % 100_000), descriptions[spk % len(descriptions)], ref,
                              fold(ref), fuzzy(ref), _CHARSET))  # fmt: skip
            for number, (modality, count) in enumerate(p.series[spk - 1], 1):
                series_pk += 1
                seuid = series_uid(series_pk)
                b.series.append((series_pk, spk, seuid, modality, number,
                                 f"{modality} SERIES {number}", _CHARSET))  # fmt: skip
                _, sop_class, size = _MODALITY[modality]
                folder = f"{root}/{suid}/{seuid}/"
                for inumber in range(1, count + 1):
                    instance_pk += 1
                    uid = sop_uid(instance_pk)
                    b.instances.append((instance_pk, series_pk, uid, sop_class, inumber,
                                        f"{folder}{uid}.dcm", _EXPLICIT_LE, size, _CHARSET,
                                        None, 0.0))  # fmt: skip
        yield b


def _spec_json(spec: Spec) -> str:
    return json.dumps({"instances": spec.instances, "seed": spec.seed, "gen": GEN_VERSION})


def _set_meta(execute: Callable[..., Any], key: str, value: str, mark: str = "?") -> None:
    execute(f"INSERT INTO meta VALUES ({mark}, {mark}) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value", (key, value))  # fmt: skip


def load_sqlite(db: Path, root: str, spec: Spec, *, analyze: bool = False) -> float:
    """Generate ``spec`` into a new SQLite index ``db``; seconds taken."""
    t0 = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    ArchiveIndex(db).close()  # the schema, as the archive makes it
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        sql = {t: f"INSERT INTO {t} ({c}) VALUES ({', '.join('?' * (c.count(',') + 1))})"
               for t, c in COLUMNS.items()}  # fmt: skip
        for b in batches(plan(spec), root):
            conn.execute("BEGIN")
            for table, rows in (("patient", b.patients), ("study", b.studies),
                                ("series", b.series), ("instance", b.instances)):  # fmt: skip
                conn.executemany(sql[table], rows)
            conn.execute("COMMIT")
        if analyze:
            conn.execute("ANALYZE")
        _set_meta(conn.execute, "root", root)
        _set_meta(conn.execute, "bench_scale", _spec_json(spec))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - t0


def load_postgres(url: str, root: str, spec: Spec) -> float:
    """Generate ``spec`` into the (empty) PostgreSQL database ``url`` with COPY; seconds."""
    import psycopg  # lazy: the optional PostgreSQL driver, only for that backend

    t0 = time.perf_counter()
    ArchiveIndex(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        for b in batches(plan(spec), root):
            with conn.transaction(), conn.cursor() as cur:
                for table, rows in (("patient", b.patients), ("study", b.studies),
                                    ("series", b.series), ("instance", b.instances)):  # fmt: skip
                    if rows:
                        with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
        for table in COLUMNS:  # rows were given their pk: the identities continue after them
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'pk'), "
                         f"(SELECT max(pk) FROM {table}))")  # fmt: skip
        conn.execute("VACUUM ANALYZE")
        _set_meta(conn.execute, "root", root, "%s")
        _set_meta(conn.execute, "bench_scale", _spec_json(spec), "%s")
    return time.perf_counter() - t0


def loaded(location: str, spec: Spec) -> bool:
    """Whether ``location`` (a SQLite file or a PostgreSQL URL) holds ``spec``, complete."""
    try:
        with ArchiveIndex(location) as index:
            rows = index.backend.fetch("SELECT value FROM meta WHERE key = 'bench_scale'")
    except Exception:
        return False
    return bool(rows) and rows[0][0] == _spec_json(spec)


def sqlite_index(spec: Spec, cache: Path = CACHE) -> tuple[Path, Path, float]:
    """(storage folder, index file, seconds spent generating: 0 when cached)."""
    storage = cache / f"sqlite-{spec.key()}" / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    db = storage / "index.sqlite"
    if db.exists() and loaded(str(db), spec):
        return storage, db, 0.0
    return storage, db, load_sqlite(db, str(storage), spec)


# --- the queries ---------------------------------------------------------------------------------

_STUDY_RETURN = ("PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "StudyID", "StudyDescription", "ReferringPhysicianName", "ModalitiesInStudy",
                 "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                 "StudyInstanceUID")  # fmt: skip


def _identifier(level: str, keys: dict[str, str], returned: tuple[str, ...] = ()) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in returned:
        setattr(ds, keyword, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _study(keys: dict[str, str]) -> Dataset:
    base = {"PatientName": "", "AccessionNumber": ""}
    return _identifier("STUDY", {**base, **keys}, _STUDY_RETURN)


@dataclass(frozen=True)
class Query:
    key: str
    title: str
    model: str  # SOP Class UID of the Find model
    make: Callable[[Plan, random.Random], Dataset]


def _series_study(p: Plan) -> list[int]:
    """The study pk of every series pk - 1."""
    return [spk for spk, series in enumerate(p.series, 1) for _ in series]


def _name_prefix(p: Plan, rng: random.Random) -> Dataset:
    return _study({"PatientName": rng.choice(_COMMON[:20]) + "*"})


def _week(p: Plan, rng: random.Random) -> Dataset:
    day = _FIRST_DAY + dt.timedelta(days=rng.randrange(_DAYS - 7))
    end = day + dt.timedelta(days=6)
    return _study({"StudyDate": f"{day:%Y%m%d}-{end:%Y%m%d}", "ModalitiesInStudy": "CT"})


def _accession(p: Plan, rng: random.Random) -> Dataset:
    return _study({"AccessionNumber": accession(rng.randrange(1, p.spec.studies + 1))})


def _series_of_study(p: Plan, rng: random.Random) -> Dataset:
    return _identifier("SERIES", {"StudyInstanceUID": study_uid(rng.randrange(1, p.spec.studies + 1))},
                       ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                        "NumberOfSeriesRelatedInstances"))  # fmt: skip


def _images_of_series(p: Plan, rng: random.Random) -> Dataset:
    owners = p.__dict__.setdefault("_series_study", _series_study(p))
    pk = rng.randrange(1, len(owners) + 1)
    return _identifier("IMAGE", {"StudyInstanceUID": study_uid(owners[pk - 1]),
                                 "SeriesInstanceUID": series_uid(pk)},
                       ("SOPInstanceUID", "SOPClassUID", "InstanceNumber"))  # fmt: skip


def _patient(p: Plan, rng: random.Random) -> Dataset:
    return _identifier("PATIENT", {"PatientID": patient_id(rng.randrange(1, p.spec.patients + 1))},
                       ("PatientName", "PatientBirthDate", "PatientSex",
                        "NumberOfPatientRelatedStudies"))  # fmt: skip


QUERIES = (
    Query("a", "STUDY PatientName=SURNAME* (Study Root)", STUDY_FIND, _name_prefix),
    Query("b", "STUDY one-week StudyDate range + ModalitiesInStudy=CT", STUDY_FIND, _week),
    Query("c", "STUDY AccessionNumber exact", STUDY_FIND, _accession),
    Query("d", "SERIES all series of one study", STUDY_FIND, _series_of_study),
    Query("e", "IMAGE all instances of one series", STUDY_FIND, _images_of_series),
    Query("f", "PATIENT PatientID exact (Patient Root)", PATIENT_FIND, _patient),
)


def identifiers(p: Plan, q: Query, n: int, seed: int = 1234) -> list[Dataset]:
    """``n`` identifiers of query ``q`` (a key value drawn afresh for each)."""
    rng = random.Random(f"{seed}-{q.key}")
    return [q.make(p, rng) for _ in range(n)]


# --- plans ---------------------------------------------------------------------------------------


class _Recorder:
    """A :class:`dicomnet.archive.query.Source` that keeps the statements instead of running
    them."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, list[object]]] = []
        self.open_stored = open  # never called: no rows

    def pages(self, head: str, where: list[str], params: list[object], key: str) -> Iterator[Row]:
        self.statements.append((page_sql(head, where, key, first=True), list(params)))
        return iter(())

    def select(self, sql: str, where: list[str], params: list[object]) -> list[Row]:
        self.statements.append((sql + "".join(f" AND {w}" for w in where), params))
        return []


def statements(identifier: Dataset, model: str) -> list[tuple[str, list[object]]]:
    """The SQL (SQLite dialect) and parameters the archive runs for the first page of a C-FIND."""
    rec = _Recorder()
    list(query.find(rec, None, identifier, "PATIENT" if model == PATIENT_FIND else "STUDY",
                    query.QueryOptions()))  # fmt: skip
    return rec.statements


def explain(
    location: str, sql: str, params: list[object], settings: tuple[str, ...] = ()
) -> list[str]:
    """The plan of one statement: EXPLAIN QUERY PLAN (SQLite) or EXPLAIN ANALYZE (PostgreSQL,
    after the ``SET`` statements ``settings``)."""
    if location.startswith("postgresql://"):
        import psycopg  # lazy: the optional PostgreSQL driver, only for that backend

        with psycopg.connect(location, autocommit=True) as conn:
            for setting in settings:
                conn.execute(f"SET {setting}")
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + translate_sql(sql), params
            ).fetchall()
        return [str(r[0]) for r in rows]
    conn = sqlite3.connect(location)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    finally:
        conn.close()
    depth: dict[int, int] = {0: -1}
    out = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        out.append("  " * depth[node] + str(detail))
    return out


def explain_all(location: str, p: Plan) -> str:
    lines = []
    for q in QUERIES:
        ds = identifiers(p, q, 1)[0]
        for sql, params in statements(ds, q.model):
            lines += [f"({q.key}) {q.title}", f"    {sql}", f"    params: {params}"]
            lines += ["    " + line for line in explain(location, sql, params)]
            lines.append("")
    return "\n".join(lines)


# --- measurement ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Qrscp:
    """``dicomnet qrscp`` on an index (started with a clean-stop marker; stopped by SIGTERM)."""

    def __init__(self, storage: Path, db: str | None = None, extra: tuple[str, ...] = ()) -> None:
        # the files do not exist: no start-up walk (a PostgreSQL index is served by a node,
        # whose marker is its own)
        where = node_dir(str(storage), "bench") if db else str(storage)
        ShutdownMarker(where).write()
        self.port = _free_port()
        argv = [sys.executable, "-m", "dicomnet.cli.main", "qrscp", "--port", str(self.port),
                "--bind", "127.0.0.1", "--storage", str(storage), "-aet", "DICOMNET", "-q",
                "--audit-log", "none",
                *(["--db", db, "--node", "bench"] if db else []), *extra]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qrscp exited: {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("qrscp did not listen")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Timing:
    query: Query
    backend: str
    seconds: list[float]
    matches: list[int]

    def pct(self, q: float) -> float:
        s = sorted(self.seconds)
        return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def measure(port: int, p: Plan, backend: str, reps: int,
            only: str = "abcdef") -> list[Timing]:  # fmt: skip
    """Each query ``reps`` times over one association (5 warm-ups first, not counted)."""
    from dicomnet import AE  # lazy: the client side only matters when measuring

    ae = AE(ae_title="SCALEBENCH")
    ae.add_requested_context(STUDY_FIND)
    ae.add_requested_context(PATIENT_FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title="DICOMNET")
    if not assoc.is_established:
        raise RuntimeError("association refused")
    out = []
    try:
        for q in QUERIES:
            if q.key not in only:
                continue
            timing = Timing(q, backend, [], [])
            for i, ds in enumerate(identifiers(p, q, reps + 5)):
                t0 = time.perf_counter()
                n = 0
                for status, identifier in assoc.send_c_find(ds, q.model):
                    code = int(getattr(status, "Status", -1))
                    if code in (0xFF00, 0xFF01) and identifier is not None:
                        n += 1
                    elif code != 0:
                        raise RuntimeError(f"C-FIND {q.key} failed: 0x{code:04X}")
                if i >= 5:
                    timing.seconds.append(time.perf_counter() - t0)
                    timing.matches.append(n)
            out.append(timing)
    finally:
        assoc.release()
    return out


def table(timings: list[Timing], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| query | backend | matches (mean) | p50 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in sorted(timings, key=lambda t: (t.query.key, t.backend)):
        lines.append(f"| ({t.query.key}) {t.query.title} | {t.backend} | "
                     f"{statistics.mean(t.matches):.1f} | {t.pct(0.5):.2f} | {t.pct(0.99):.2f} | "
                     f"{max(t.seconds) * 1000:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(spec: Spec, backends: list[str], reps: int, *, pg_url: str | None = None,
        show_plans: bool = False, log: Callable[[str], None] = print) -> str:  # fmt: skip
    """Generate (or reuse), measure and tabulate; the markdown text."""
    p = plan(spec)
    timings: list[Timing] = []
    notes: list[str] = []
    plans: list[str] = []
    if "sqlite" in backends:
        storage, db, seconds = sqlite_index(spec)
        made = f"generated in {seconds:.0f} s" if seconds else "cached"
        notes.append(f"SQLite: {made}, "
                     f"{db.stat().st_size / 1e6:.0f} MB ({db})")  # fmt: skip
        log(notes[-1])
        if show_plans:
            plans.append("SQLite:\n" + explain_all(str(db), p))
        server = Qrscp(storage)
        try:
            timings += measure(server.port, p, "sqlite", reps)
        finally:
            server.stop()
    if "postgresql" in backends:
        sys.path.insert(0, str(HERE.parent))
        from tests import pg_cluster  # lazy: a throwaway cluster only when none is given

        cluster = None if pg_url else pg_cluster.start()
        if cluster is None and not pg_url:
            raise RuntimeError("no PostgreSQL: give --pg-url or install postgresql")
        storage = CACHE / f"pg-storage-{os.getpid()}"
        try:
            url = pg_url or cluster.database()  # type: ignore[union-attr]
            storage.mkdir(parents=True, exist_ok=True)
            if loaded(url, spec):
                notes.append("PostgreSQL: already loaded")
                with ArchiveIndex(url) as index:  # the root the queries' paths are under
                    index.rebase(str(storage))
            else:
                seconds = load_postgres(url, str(storage), spec)
                notes.append(f"PostgreSQL: generated (COPY, VACUUM ANALYZE) in {seconds:.0f} s")
            log(notes[-1])
            if show_plans:
                plans.append("PostgreSQL:\n" + explain_all(url, p))
            server = Qrscp(storage, url)
            try:
                timings += measure(server.port, p, "postgresql", reps)
            finally:
                server.stop()
        finally:
            shutil.rmtree(storage, ignore_errors=True)
            if cluster is not None:
                cluster.stop()
    title = (
        f"m. C-FIND latency, {spec.instances:,} instances ({spec.studies:,} studies, "
        f"{spec.patients:,} patients), {reps} queries each over one association"
    )
    text = table(timings, title) + "\n" + "; ".join(notes) + "\n"
    if plans:
        text += "\n```\n" + "\n".join(plans) + "```\n"
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--pg-url", default=None, help="an existing database (loaded once)")
    ap.add_argument("--explain", action="store_true", help="print the query plans too")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    text = run(Spec(args.instances), args.backends.split(","), args.reps, pg_url=args.pg_url,
               show_plans=args.explain, log=lambda s: print(s, file=sys.stderr, flush=True))  # fmt: skip
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
