"""Status codes and categories (PS3.7 Annex C; PS3.4 B.2.3, C.4)."""

from __future__ import annotations

import pytest

from dicomnet.dimse.status import SERVICE_STATUS, STATUS, Category, Status, category, describe


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x0000, Category.SUCCESS),
        (0x0001, Category.WARNING),
        (0x0107, Category.WARNING),
        (0x0116, Category.WARNING),
        (0xB000, Category.WARNING),
        (0xB006, Category.WARNING),
        (0xB007, Category.WARNING),
        (0xBFFF, Category.WARNING),
        (0xFE00, Category.CANCEL),
        (0xFF00, Category.PENDING),
        (0xFF01, Category.PENDING),
        (0xFF02, Category.FAILURE),
        (0xA700, Category.FAILURE),
        (0xA7FF, Category.FAILURE),
        (0xA900, Category.FAILURE),
        (0xA801, Category.FAILURE),
        (0xC000, Category.FAILURE),
        (0xCFFF, Category.FAILURE),
        (0x0110, Category.FAILURE),
        (0x0120, Category.FAILURE),
        (0x0212, Category.FAILURE),
        (0x0002, Category.FAILURE),
        (0xAFFF, Category.FAILURE),
        (0xFFFF, Category.FAILURE),
    ],
)
def test_category_rules(code: int, expected: Category) -> None:
    assert category(code) is expected
    assert category(code, "C-STORE") is expected


def test_registries_agree_with_rules() -> None:
    for code, (cat, text) in STATUS.items():
        assert category(code) is cat, hex(code)
        assert text
    for service, table in SERVICE_STATUS.items():
        for key, (cat, _text) in table.items():
            low, high = key if isinstance(key, tuple) else (key, key)
            assert category(low, service) is cat and category(high, service) is cat


def test_general_n_service_codes_present() -> None:
    for code in (0x0105, 0x0106, 0x0107, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0116,
                 0x0117, 0x0118, 0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211,
                 0x0212, 0x0213):  # fmt: skip
        assert code in STATUS
    assert int(Status.MISSING_ATTRIBUTE) == 0x0120
    assert int(Status.MISTYPED_ARGUMENT) == 0x0212


def test_service_codes_present() -> None:
    for code in (0xA700, 0xA701, 0xA702, 0xA801, 0xA900, 0xB000, 0xFE00, 0xFF00):
        assert code in SERVICE_STATUS["C-MOVE"]
    assert 0xA801 not in SERVICE_STATUS["C-GET"]
    assert 0xFF01 in SERVICE_STATUS["C-FIND"]
    for code in (0xB000, 0xB006, 0xB007):
        assert code in SERVICE_STATUS["C-STORE"]


def test_describe() -> None:
    assert describe(0xA801, "C-MOVE") == "0xA801 Failure: Refused: move destination unknown"
    assert describe(0xA7F3, "C-STORE") == "0xA7F3 Failure: Refused: out of resources"
    assert describe(0xC123, "C-FIND") == "0xC123 Failure: Failed: unable to process"
    assert describe(0xB000, "C-STORE") == "0xB000 Warning: Coercion of data elements"
    assert "Sub-operations complete" in describe(0xB000, "C-GET")
    assert describe(0x0112) == "0x0112 Failure: No such SOP Instance"
    assert describe(0x0112, "N-DELETE") == "0x0112 Failure: No such SOP Instance"
    assert describe(0xD123) == "0xD123 Failure"
    assert describe(0xB123, "UNKNOWN-SERVICE") == "0xB123 Warning"
