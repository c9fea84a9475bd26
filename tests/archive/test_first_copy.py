"""A second C-STORE of a stored SOP Instance UID: the first copy stays (Success, nothing
replaced, nothing left behind) unless the archive overwrites -- on both index backends. On
PostgreSQL the check is part of the one statement the file store runs before putting the file
in place (one round trip per C-STORE fewer); SQLite answers it before anything is written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from dicomnet.ae import AE
from dicomnet.archive.scp import Archive, archive_ae
from tests.archive.test_commitment import make_ct

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_copy(tmp_path: Path, index_at: str, overwrite: bool,
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    archive = Archive(tmp_path / "storage", index_at, recover=False, ae_title="ARCHIVE",
                      overwrite=overwrite)  # fmt: skip
    early: list[Any] = []
    get_instance = archive.index.get_instance
    monkeypatch.setattr(archive.index, "get_instance",
                        lambda uid: early.append(uid) or get_instance(uid))  # fmt: skip
    server = archive_ae("ARCHIVE").start_server(("127.0.0.1", 0), block=False,
                                                evt_handlers=archive.handlers())  # fmt: skip
    try:
        scu = AE("SCU")
        scu.add_requested_context(CT, [EXPLICIT, IMPLICIT])
        first, second = make_ct(1), make_ct(1)
        first.StudyDescription, second.StudyDescription = "ORIGINAL", "CHANGED"
        with scu.associate("127.0.0.1", server.address[1], ae_title="ARCHIVE") as assoc:
            assert assoc.send_c_store(first).Status == 0
            assert assoc.send_c_store(second).Status == 0  # Success either way
        looked_up = len(early)
        item = archive.index.get_instance(first.SOPInstanceUID)
        assert item is not None
        kept = "CHANGED" if overwrite else "ORIGINAL"
        assert dcmread(item.path).StudyDescription == kept
        assert archive.index.instance_count() == 1
        assert os.listdir(archive.files.tmp_dir) == []  # the second copy's temp file is gone
        postgres = index_at.startswith("postgresql://")
        # the early look-up: SQLite's, once per C-STORE; PostgreSQL's rides on the
        # pre-store statement; overwriting needs none
        assert looked_up == (0 if overwrite or postgres else 2)
    finally:
        server.shutdown()
        archive.close()
