"""The indexes the archive's queries rely on at scale (bench/scale.py measures them at
1,000,000 instances): on a small generated index (5000 instances, made by the benchmark's own
generator), the plan of every viewer query of the benchmark reaches its rows through the
expected index -- no full scan of study, series or instance -- and the archive's own query
functions find exactly the generated rows. On PostgreSQL the plans are read with sequential
scans disabled (tables this small are cheaper to scan whole, which says nothing about a large
one): a query whose index is missing still shows a ``Seq Scan`` then, and fails.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pydicom.dataset import Dataset

from dicomnet.archive import schema
from dicomnet.archive.backend import translate_sql
from dicomnet.archive.index import ArchiveIndex
from tests.pg_cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]


def _load_scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


scale = _load_scale()
SPEC = scale.Spec(instances=5000, seed=3)
PLAN = scale.plan(SPEC)

# query key -> the indexes its plan must use, per backend
EXPECTED = {
    "a": {"study_pname_ix"},
    "b": {"study_date_ix", "series_study_modality_ix"},
    "c": {"study_accession_ix"},
    "d": {"<study uid>", "series_study_modality_ix"},
    "e": {"<series uid>", "instance_series_ix"},
    "f": {"<patient id>"},
}
UNIQUE = {
    "sqlite": {"<study uid>": "sqlite_autoindex_study_1", "<series uid>": "sqlite_autoindex_series_1",
               "<patient id>": "sqlite_autoindex_patient_1"},
    "postgresql": {"<study uid>": "study_study_uid_patient_fk_key",
                   "<series uid>": "series_series_uid_study_fk_key",
                   "<patient id>": "patient_patient_id_issuer_key"},
}  # fmt: skip
PG_SETTINGS = ("enable_seqscan = off",)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def location(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("scale")
    if request.param == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgresql")
        url = cluster.database()
        scale.load_postgres(url, str(root), SPEC)
        yield url
    else:
        db = root / "index.sqlite"
        scale.load_sqlite(db, str(root), SPEC)
        yield str(db)


def _backend(location: str) -> str:
    return "postgresql" if location.startswith("postgresql://") else "sqlite"


def _plan(location: str, key: str) -> str:
    q = next(q for q in scale.QUERIES if q.key == key)
    (sql, params), = scale.statements(scale.identifiers(PLAN, q, 1)[0], q.model)  # fmt: skip
    return "\n".join(scale.explain(location, sql, params, PG_SETTINGS))


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_query_uses_its_indexes(location: str, key: str) -> None:
    backend = _backend(location)
    plan = _plan(location, key)
    for name in EXPECTED[key]:
        name = UNIQUE[backend].get(name, name)
        assert re.search(rf"\b{name}\b", plan), f"({key}) does not use {name}:\n{plan}"
    if backend == "sqlite":
        # "SCAN d" is the subquery of ModalitiesInStudy's DISTINCT, not a table
        assert not re.search(r"^\s*SCAN (st|se|i|p|x|y|z)\b", plan, re.M), plan
    else:
        assert "Seq Scan" not in plan, plan
        # a primary key index read whole (filtered) is a full scan too
        assert not re.search(r"Index (Only )?Scan using \w+_pkey on \w+ (st|se|i)\b", plan), plan


def test_prefix_uses_a_range_of_the_btree(location: str) -> None:
    """LIKE 'prefix%' on a COLLATE "C" column is a range of its B-tree on PostgreSQL; GLOB
    'prefix*' one on SQLite."""
    plan = _plan(location, "a")
    if _backend(location) == "postgresql":
        assert re.search(r"Index Cond: \(\(patient_name_fold >= '\w+'::text\) AND "
                         r"\(patient_name_fold < '\w+.'::text\)", plan), plan  # fmt: skip
    else:
        assert re.search(r"study_pname_ix \(patient_name_fold>\? AND patient_name_fold<\?\)", plan)


def _uids(
    index: ArchiveIndex, ds: Dataset, model: str = "STUDY", tag: str = "StudyInstanceUID"
) -> set[str]:
    return {str(r.get(tag)) for r in index.query(None, ds, model)}


def test_generated_rows_are_found(location: str) -> None:
    p = PLAN
    studies = range(1, SPEC.studies + 1)
    name = p.patients[p.study_patient[0] - 1][0]
    surname = name.split("^")[0]
    with ArchiveIndex(location) as index:
        # (a) the prefix: exactly the studies of patients whose name starts with it
        expected = {scale.study_uid(k) for k in studies
                    if p.patients[p.study_patient[k - 1] - 1][0].startswith(surname)}  # fmt: skip
        assert expected and _uids(index, scale._study({"PatientName": surname + "*"})) == expected
        # (b) a date range with a modality
        lo, hi = sorted(p.study_date)[len(studies) // 3], sorted(p.study_date)[len(studies) // 2]
        expected = {scale.study_uid(k) for k in studies if lo <= p.study_date[k - 1] <= hi
                    and any(m == "CT" for m, _ in p.series[k - 1])}  # fmt: skip
        ds = scale._study({"StudyDate": f"{lo}-{hi}", "ModalitiesInStudy": "CT"})
        assert expected and _uids(index, ds) == expected
        # (c) accession, (d) series of a study, (e) instances of a series, (f) patient
        assert _uids(index, scale._study({"AccessionNumber": scale.accession(7)})) == {
            scale.study_uid(7)
        }
        rng = scale.random.Random(5)
        for ds in scale.identifiers(p, scale.QUERIES[3], 5):
            k = int(ds.StudyInstanceUID.rsplit(".", 1)[1]) - scale._UID_BASE["study"]
            got = list(index.query(None, ds, "STUDY"))
            assert sorted(str(r.Modality) for r in got) == sorted(m for m, _ in p.series[k - 1])
        owners = scale._series_study(p)
        counts = [n for series in p.series for _, n in series]  # instances of series pk - 1
        for _ in range(5):
            pk = rng.randrange(1, len(owners) + 1)
            ds = scale._identifier("IMAGE", {"StudyInstanceUID": scale.study_uid(owners[pk - 1]),
                                             "SeriesInstanceUID": scale.series_uid(pk)},
                                   ("SOPInstanceUID",))  # fmt: skip
            assert len(_uids(index, ds, tag="SOPInstanceUID")) == counts[pk - 1]
        ds = scale._identifier("PATIENT", {"PatientID": scale.patient_id(3)}, ("PatientName",))
        got = list(index.query(None, ds, "PATIENT"))
        assert [str(r.PatientName) for r in got] == [p.patients[2][0]]


def test_existing_index_gets_missing_indexes(tmp_path: Path) -> None:
    """An index made before series_study_modality_ix existed gets it when opened (and loses
    the index it replaces); a second open has nothing to do."""
    db = tmp_path / "index.sqlite"
    ArchiveIndex(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX series_study_modality_ix")
    conn.execute("CREATE INDEX series_study_ix ON series(study_fk)")
    conn.commit()
    conn.close()
    with ArchiveIndex(db) as index:
        names = index.backend.indexes()
        assert "series_study_modality_ix" in names and "series_study_ix" not in names
        assert schema.ensure_indexes(index.backend) == []


def test_postgres_statistics_target(location: str) -> None:
    if _backend(location) != "postgresql":
        pytest.skip("PostgreSQL only")
    with ArchiveIndex(location) as index:
        rows = index.backend.fetch(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = CAST('study' AS regclass) "
            "AND attname = 'study_date_norm'"
        )
        assert rows[0][0] == 1000


def test_prefix_uses_the_btree_in_a_generic_plan(location: str) -> None:
    """PostgreSQL may run a prepared statement (psycopg prepares one after five runs) with a
    generic plan, made without the parameters' values: a LIKE pattern alone then cannot bound
    an index scan (a full scan, 54 ms at 1M instances); the literal prefix's range, bound as
    parameters too, still can."""
    if _backend(location) != "postgresql":
        pytest.skip("PostgreSQL only")
    import psycopg
    import psycopg.sql

    q = next(q for q in scale.QUERIES if q.key == "a")
    (sql, params), = scale.statements(scale.identifiers(PLAN, q, 1)[0], q.model)  # fmt: skip
    numbered = translate_sql(sql)
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("%s", f"${n}", 1)
    with psycopg.connect(location, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        types = ", ".join("bigint" if isinstance(v, int) else "text" for v in params)
        conn.execute(f"PREPARE prefix_query ({types}) AS {numbered}")
        args = ", ".join(psycopg.sql.Literal(v).as_string(conn) for v in params)
        rows = conn.execute(f"EXPLAIN (COSTS OFF) EXECUTE prefix_query({args})").fetchall()
    plan = "\n".join(str(r[0]) for r in rows)
    assert re.search(r"Index Cond: \(\(patient_name_fold >= \$\d+\) AND "
                     r"\(patient_name_fold < \$\d+\)", plan), plan  # fmt: skip
