"""PS3.4 C.2.2.2 matching: the SQL translation and the Python predicates agree, and values from
the peer are bound parameters, never SQL text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.archive.backend import translate_ddl, translate_sql
from dicomnet.archive.matching import (
    fold_pn,
    glob_escape,
    key_values,
    normalize_date,
    normalize_time,
    python_matcher,
    sql_condition,
)
from dicomnet.archive.models import QueryError
from tests.pg_cluster import Cluster


def sql_match(vr: str, stored: list[str], key: list[str], pg: Any = None) -> set[int]:
    """Rows of ``stored`` that the SQL condition selects (stored values prepared like the
    index does: folded PN, normalised TM/DA), on SQLite, or on PostgreSQL when ``pg`` (a
    psycopg connection) is given -- through the backend's translation of the SQL."""
    create = "CREATE TABLE t (pk INTEGER PRIMARY KEY, v TEXT, n INTEGER)"
    rows = []
    for i, s in enumerate(stored):
        if vr == "PN":
            v = fold_pn(s)
        elif vr == "TM":
            v = normalize_time(s)
        elif vr == "DA":
            v = normalize_date(s) or s
        else:
            v = s
        number = int(s) if vr == "IS" and s.strip().lstrip("-").isdigit() else None
        rows.append((i, v, number))
    column = "n" if vr == "IS" else "v"
    cond = sql_condition(vr, column, key, integer=vr == "IS", case_insensitive=vr == "PN")
    sql = "SELECT pk FROM t" + ("" if cond is None else f" WHERE {cond[0]}")
    params = [] if cond is None else cond[1]
    if pg is not None:
        with pg.transaction(force_rollback=True):
            pg.execute(translate_ddl(create).replace("CREATE TABLE", "CREATE TEMP TABLE"))
            with pg.cursor() as cur:
                cur.executemany(translate_sql("INSERT INTO t VALUES (?, ?, ?)"), rows)
            found = pg.execute(translate_sql(sql), params).fetchall()
        return {r[0] for r in found}
    conn = sqlite3.connect(":memory:")
    conn.execute(create)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    result = conn.execute(sql, params).fetchall()
    conn.close()
    return {r[0] for r in result}


@pytest.fixture(scope="module")
def pg(postgresql: Cluster) -> Iterator[Any]:
    """A connection to a fresh database of the session's PostgreSQL cluster."""
    import psycopg

    with psycopg.connect(postgresql.database()) as conn:
        yield conn


def py_match(vr: str, stored: list[str], key: list[str]) -> set[int]:
    pred = python_matcher(vr, key)
    return {i for i, s in enumerate(stored) if (not key) or pred(s)}


# (vr, stored values, key values, indexes expected to match)
CASES = [
    ("LO", ["abc", "ABC", "", "abd"], [], {0, 1, 2, 3}),  # universal
    ("LO", ["abc", "ABC", "", "abd"], ["abc"], {0}),  # single value, case-sensitive
    ("LO", ["abc", "ABC", "", "abd"], ["*"], {0, 1, 2, 3}),  # '*' matches empty too
    ("LO", ["abc", "ABC", "", "abd"], ["ab?"], {0, 3}),
    ("LO", ["abc", "ABC", "", "abd"], ["a*c"], {0}),
    ("LO", ["a[1]", "a1", "a[x]"], ["a[1]"], {0}),  # '[' is not a GLOB class here
    ("LO", ["a[1]", "a1", "a[x]"], ["a[*"], {0, 2}),
    ("LO", ["50%", "5_0", "500"], ["5_0"], {1}),  # LIKE metacharacters are literals
    ("LO", ["50%", "5_0", "500"], ["50%"], {0}),
    ("LO", ["x'; DROP TABLE t; --", "y"], ["x'; DROP TABLE t; --"], {0}),  # injection inert
    ("CS", ["CT", "MR", "ct"], ["CT\\MR"][0].split("\\"), {0, 1}),
    ("PN", ["Doe^John", "DOE^JOHN^^", "Roe^Jane"], ["doe^john"], {0, 1}),
    ("PN", ["Doe^John", "DOE^JOHN^^", "Roe^Jane"], ["?OE^*"], {0, 1, 2}),
    ("PN", ["Ärger^Ö", "arger^o"], ["ä*"], {0}),
    ("UI", ["1.2.3", "1.2.4", "1.2.30"], ["1.2.3", "1.2.4"], {0, 1}),  # list of UID
    ("UI", ["1.2.3", "1.2.4"], ["1.2.*"], set()),  # no wildcards for UI
    ("DA", ["20200101", "20201231", "20210101", ""], ["20200101-20201231"], {0, 1}),
    ("DA", ["20200101", "20201231", "20210101", ""], ["-20200101"], {0}),
    ("DA", ["20200101", "20201231", "20210101", ""], ["20201231-"], {1, 2}),
    ("DA", ["20200101", "2020.12.31", ""], ["20201231"], {1}),  # ACR-NEMA form stored
    ("TM", ["1010", "101010.5", "12", "235959.999999", ""], ["1010"], {0, 1}),
    ("TM", ["1010", "101010.5", "12", "235959.999999", ""], ["10-11"], {0, 1}),
    ("TM", ["1010", "101010.5", "12", "235959.999999", ""], ["12-"], {2, 3}),
    ("TM", ["1010", "101010.5", "12", "235959.999999", ""], ["-101010.4"], {0}),
    ("TM", ["10:10:10", "101011"], ["101010"], {0}),  # ACR-NEMA form stored
    ("IS", ["1", "01", "10", ""], ["1"], {0, 1}),
    ("IS", ["1", "01", "10", ""], ["x"], set()),
]


@pytest.mark.parametrize(("vr", "stored", "key", "expected"), CASES)
def test_sql_and_python_agree(vr: str, stored: list[str], key: list[str], expected: set[int]):
    assert sql_match(vr, stored, key) == expected
    assert py_match(vr, stored, key) == expected


@pytest.mark.parametrize(("vr", "stored", "key", "expected"), CASES)
def test_postgresql_matches_the_same(vr: str, stored: list[str], key: list[str],
                                     expected: set[int], pg: Any) -> None:  # fmt: skip
    """The same table on PostgreSQL (GLOB as LIKE, byte-order collation, ? as %s)."""
    assert sql_match(vr, stored, key, pg) == expected


@pytest.mark.parametrize(
    ("vr", "key"),
    [
        ("DA", "2020"),
        ("DA", "20201301"),
        ("DA", "-"),
        ("TM", "2500"),
        ("TM", "1260"),
        ("TM", "ab-"),
        ("DT", "2020-x"),
    ],
)
def test_malformed_range_keys_refused(vr: str, key: str) -> None:
    with pytest.raises(QueryError) as info:
        sql_condition(vr, "v", [key])
    assert info.value.status == 0xC000
    with pytest.raises(QueryError):
        python_matcher(vr, [key])


def test_dt_ranges_python() -> None:
    pred = python_matcher("DT", ["20200101-20200102"])
    assert pred("20200101120000")
    assert pred("20200102235959.5")
    assert not pred("20200103")
    offset = python_matcher("DT", ["20200101120000-0500"])  # a UTC offset, not a range
    assert offset("20200101120000")
    assert not offset("20200101120001")


def test_helpers() -> None:
    assert key_values(None) == [] and key_values("") == [] and key_values("  ") == []
    assert key_values(["a ", "", "b"]) == ["a", "b"]
    assert key_values(b"X\x00") == ["X"]
    assert fold_pn("Doe^John^^=^") == "doe^john"
    assert glob_escape("a[b]*?") == "a[[]b]*?"
    assert normalize_time("1") == ""
    assert normalize_time("12") == "120000.000000"
    assert normalize_time("12", upper=True) == "125959.999999"
    assert normalize_time("1230", upper=True) == "123059.999999"
    assert normalize_time("123045.1", upper=True) == "123045.199999"
    assert normalize_date("20200230") == "20200230"  # day range only, like the VR check
    assert normalize_date("2020") == ""


_alphabet = st.sampled_from(list("aAbB*?[ ^é"))
_text = st.text(_alphabet, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    vr=st.sampled_from(["LO", "PN", "CS", "SH"]),
    stored=st.lists(st.text(st.sampled_from(list("aAbB[ ^é")), max_size=5), max_size=6),
    key=st.lists(_text.map(str.strip).filter(bool), max_size=3),
)
def test_text_matching_property(vr: str, stored: list[str], key: list[str]) -> None:
    stored = [s.strip() for s in stored]
    assert sql_match(vr, stored, key) == py_match(vr, stored, key)


@settings(max_examples=100, deadline=None)
@given(
    vr=st.sampled_from(["LO", "PN", "CS", "SH"]),
    stored=st.lists(st.text(st.sampled_from(list("aAbB[ ^é%_\\")), max_size=5), max_size=6),
    key=st.lists(st.text(st.sampled_from(list("aAbB*?[ ^é%_\\")), max_size=6)
                 .map(str.strip).filter(bool), max_size=3),
)
def test_text_matching_property_postgresql(pg: Any, vr: str, stored: list[str],
                                           key: list[str]) -> None:  # fmt: skip
    stored = [s.strip() for s in stored]
    assert sql_match(vr, stored, key, pg) == py_match(vr, stored, key)


_times = st.builds(
    lambda h, m, s, f: f"{h:02d}{m:02d}{s:02d}" + (f".{f}" if f else ""),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", "1", "5", "999999", "000001"]),
)


@settings(max_examples=200, deadline=None)
@given(
    stored=st.lists(_times.map(lambda t: t[: len(t) if len(t) > 6 else 6]), max_size=6),
    low=st.one_of(st.just(""), _times.map(lambda t: t[:2]), _times.map(lambda t: t[:4]), _times),
    high=st.one_of(st.just(""), _times.map(lambda t: t[:2]), _times.map(lambda t: t[:4]), _times),
)
def test_time_range_property(stored: list[str], low: str, high: str) -> None:
    if not low and not high:
        return
    key = [f"{low}-{high}"]
    expected = {
        i
        for i, s in enumerate(stored)
        if (not low or normalize_time(s) >= normalize_time(low))
        and (not high or normalize_time(s) <= normalize_time(high, upper=True))
    }
    assert sql_match("TM", stored, key) == py_match("TM", stored, key) == expected


@settings(max_examples=50, deadline=None)
@given(low=_times, high=_times, stored=st.lists(_times, max_size=6))
def test_time_range_postgresql(pg: Any, low: str, high: str, stored: list[str]) -> None:
    key = [f"{low}-{high}"]
    assert sql_match("TM", stored, key, pg) == py_match("TM", stored, key)
