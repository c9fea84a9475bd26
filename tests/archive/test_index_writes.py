"""How a store writes the index's parent rows (patient, study, series), on both backends: the
values of the latest instance always end up in the rows, and on SQLite an instance whose parents
are unchanged writes only its own row (the parents are read and compared, not rewritten)."""

from __future__ import annotations

import dataclasses
import sqlite3

from dicomnet.archive.fields import InstanceFields
from dicomnet.archive.index import ArchiveIndex
from tests.archive.conftest import CT

STUDY = "1.2.826.0.1.3680043.2.1125.77.1"


def _fields(n: int, **changes: str) -> InstanceFields:
    base = InstanceFields(
        sop_instance_uid=f"{STUDY}.9.{n}", sop_class_uid=CT, study_instance_uid=STUDY,
        series_instance_uid=f"{STUDY}.1", patient_id="P1", patient_name="Doe^Jane",
        patient_birth_date="19700101", study_date="20260101", study_description="Chest",
        modality="CT", series_number="1", series_description="Axial", instance_number=str(n),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _rows(index: ArchiveIndex) -> tuple[list[tuple[object, ...]], ...]:
    return (
        index.backend.fetch("SELECT patient_name, birth_date FROM patient"),
        index.backend.fetch("SELECT patient_name, study_description, study_date_norm FROM study"),
        index.backend.fetch("SELECT series_description, series_number FROM series"),
    )


def test_latest_instance_values_reach_parent_rows(index_at: str) -> None:
    with ArchiveIndex(index_at) as index:
        index.add_instance(_fields(1), "a/1.dcm", "1.2.840.10008.1.2", 10)
        index.add_instance(_fields(2), "a/2.dcm", "1.2.840.10008.1.2", 10)
        assert _rows(index) == (
            [("Doe^Jane", "19700101")], [("Doe^Jane", "Chest", "20260101")], [("Axial", 1)]
        )
        # a later instance with other values: each level takes them (last stored wins)
        index.add_instance(
            _fields(3, patient_name="Roe^Jane", study_description="Chest+Abdomen",
                    study_date="20260102", series_description="Coronal", series_number="2"),
            "a/3.dcm", "1.2.840.10008.1.2", 10,
        )  # fmt: skip
        assert _rows(index) == (
            [("Roe^Jane", "19700101")],
            [("Roe^Jane", "Chest+Abdomen", "20260102")],
            [("Coronal", 2)],
        )
        # ... and back: an unchanged-looking row must not hide a change
        index.add_instance(_fields(4), "a/4.dcm", "1.2.840.10008.1.2", 10)
        assert _rows(index) == (
            [("Doe^Jane", "19700101")], [("Doe^Jane", "Chest", "20260101")], [("Axial", 1)]
        )
        assert len(index.backend.fetch("SELECT pk FROM instance")) == 4


def test_unchanged_parents_are_not_rewritten_on_sqlite(tmp_path: object) -> None:
    with ArchiveIndex(f"{tmp_path}/index.sqlite") as index:
        index.add_instance(_fields(1), "a/1.dcm", "1.2.840.10008.1.2", 10)
        conn = index.backend.conn()  # type: ignore[attr-defined]
        assert isinstance(conn, sqlite3.Connection)
        before = conn.total_changes
        index.add_instance(_fields(2), "a/2.dcm", "1.2.840.10008.1.2", 10)
        assert conn.total_changes - before == 1  # the instance row only
        before = conn.total_changes
        index.add_instance(_fields(3, series_description="Coronal"), "a/3.dcm",
                           "1.2.840.10008.1.2", 10)  # fmt: skip
        assert conn.total_changes - before == 2  # the series row and the instance row
