"""The seed corpora are current and every seed runs cleanly through its target (no atheris)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz.targets import TARGETS, load

from fuzz import make_seeds

CORPUS = Path(make_seeds.__file__).parent / "corpus"


@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, bytes]]:
    return make_seeds.build()


def test_committed_corpus_matches_make_seeds(built: dict[str, dict[str, bytes]]) -> None:
    for target, seeds in built.items():
        on_disk = {p.name: p.read_bytes() for p in (CORPUS / target).iterdir()}
        assert on_disk == seeds, f"fuzz/corpus/{target} is stale: run fuzz/make_seeds.py"
    assert set(built) == set(TARGETS)


def test_corpus_is_commit_sized(built: dict[str, dict[str, bytes]]) -> None:
    total = sum(len(c) for seeds in built.values() for c in seeds.values())
    assert total < 512 * 1024, total
    for target, seeds in built.items():
        limit = TARGETS[target][2]
        too_long = [name for name, c in seeds.items() if len(c) > limit]
        assert not too_long, f"{target}: seeds above -max_len {limit}: {too_long}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_run_cleanly(target: str, built: dict[str, dict[str, bytes]]) -> None:
    entry = load(target)
    assert len(built[target]) >= 5
    for name, content in sorted(built[target].items()):
        try:
            entry(content)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{target} seed {name}: {type(exc).__name__}: {exc}")
