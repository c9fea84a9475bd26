"""The state machine table against a second, independent transcription of PS3.8 Table 9-10."""

from __future__ import annotations

import pytest

from dicomnet.ul.fsm import (
    ACTIONS,
    EVENT_DESCRIPTIONS,
    LOCAL_CHOICES,
    STATE_DESCRIPTIONS,
    TRANSITIONS,
    Action,
    Event,
    State,
    lookup,
    next_state,
)

# PS3.8 Table 9-10 transcribed as a grid: one line per event, one column per state (Sta1..Sta13),
# "-" for a blank cell. Typed in from the standard separately from src/dicomnet/ul/fsm.py.
GRID = """
        1     2     3     4     5     6     7     8     9     10    11    12    13
Evt1    AE-1  -     -     -     -     -     -     -     -     -     -     -     -
Evt2    -     -     -     AE-2  -     -     -     -     -     -     -     -     -
Evt3    -     AA-1  AA-8  -     AE-3  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt4    -     AA-1  AA-8  -     AE-4  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt5    AE-5  -     -     -     -     -     -     -     -     -     -     -     -
Evt6    -     AE-6  AA-8  -     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
Evt7    -     -     AE-7  -     -     -     -     -     -     -     -     -     -
Evt8    -     -     AE-8  -     -     -     -     -     -     -     -     -     -
Evt9    -     -     -     -     -     DT-1  -     AR-7  -     -     -     -     -
Evt10   -     AA-1  AA-8  -     AA-8  DT-2  AR-6  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt11   -     -     -     -     -     AR-1  -     -     -     -     -     -     -
Evt12   -     AA-1  AA-8  -     AA-8  AR-2  AR-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-6
Evt13   -     AA-1  AA-8  -     AA-8  AA-8  AR-3  AA-8  AA-8  AR-10 AR-3  AA-8  AA-6
Evt14   -     -     -     -     -     -     -     AR-4  AR-9  -     -     AR-4  -
Evt15   -     -     AA-1  AA-2  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  AA-1  -
Evt16   -     AA-2  AA-3  -     AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-3  AA-2
Evt17   -     AA-5  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AA-4  AR-5
Evt18   -     AA-2  -     -     -     -     -     -     -     -     -     -     AA-2
Evt19   -     AA-1  AA-8  -     AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-8  AA-7
"""

# PS3.8 Tables 9-6 to 9-9: the next state of every action ("?" = conditional).
NEXT = """
AE-1 4  AE-2 5  AE-3 6  AE-4 1  AE-5 2  AE-6 ?  AE-7 6  AE-8 13
DT-1 6  DT-2 6
AR-1 7  AR-2 8  AR-3 1  AR-4 13  AR-5 1  AR-6 7  AR-7 8  AR-8 ?  AR-9 11  AR-10 12
AA-1 13  AA-2 1  AA-3 1  AA-4 1  AA-5 1  AA-6 13  AA-7 13  AA-8 13
"""


def parse_grid() -> dict[tuple[int, int], str | None]:
    lines = [line.split() for line in GRID.strip().splitlines()]
    header = [int(x) for x in lines[0]]
    assert header == list(range(1, 14))
    cells: dict[tuple[int, int], str | None] = {}
    for row in lines[1:]:
        assert len(row) == 14, row
        event = int(row[0].removeprefix("Evt"))
        for state, cell in zip(header, row[1:], strict=True):
            cells[(state, event)] = None if cell == "-" else cell
    assert len(cells) == 13 * 19
    return cells


GRID_CELLS = parse_grid()
ALL_PAIRS = sorted(GRID_CELLS)


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS)
def test_every_cell_matches_table_9_10(state: int, event: int) -> None:
    expected = GRID_CELLS[(state, event)]
    got = lookup(State(state), Event(event))
    assert (got.value if got else None) == expected


def test_table_has_no_extra_cells() -> None:
    non_blank = {k for k, v in GRID_CELLS.items() if v is not None}
    assert {(s.value, e.value) for s, e in TRANSITIONS} == non_blank
    assert len(TRANSITIONS) == 123


def test_next_states_match_tables_9_6_to_9_9() -> None:
    tokens = NEXT.split()
    expected = dict(zip(tokens[::2], tokens[1::2], strict=True))
    assert set(expected) == {a.value for a in Action}
    for action in Action:
        spec = ACTIONS[action]
        want = expected[action.value]
        if want == "?":
            assert spec.next_state is None
        else:
            assert spec.next_state == State(int(want))
            assert next_state(action, requestor=True) == State(int(want))
            assert next_state(action, requestor=False) == State(int(want))


def test_ae6_next_state_depends_on_acceptability() -> None:
    assert next_state(Action.AE_6, requestor=False, acceptable=True) is State.STA3
    assert next_state(Action.AE_6, requestor=False, acceptable=False) is State.STA13


def test_ar8_next_state_depends_on_role() -> None:
    assert next_state(Action.AR_8, requestor=True) is State.STA9
    assert next_state(Action.AR_8, requestor=False) is State.STA10


def test_local_choices_are_only_blank_cells() -> None:
    for state, event in LOCAL_CHOICES:
        assert GRID_CELLS[(state.value, event.value)] is None


def test_descriptions_cover_everything() -> None:
    assert set(STATE_DESCRIPTIONS) == set(State)
    assert set(EVENT_DESCRIPTIONS) == set(Event)
    assert set(ACTIONS) == set(Action)
    assert State.STA13.label == "Sta13" and Event.EVT19.label == "Evt19"


def test_received_pdu_events_are_defined_wherever_a_transport_exists() -> None:
    # Every state with an open transport connection (all but Sta1 and Sta4) has an action for
    # every received-PDU event: nothing the peer sends can fall into a blank cell.
    pdu_events = [3, 4, 6, 10, 12, 13, 16, 19]
    for state in State:
        for event in pdu_events:
            defined = lookup(state, Event(event)) is not None
            assert defined == (state not in (State.STA1, State.STA4)), (state, event)


def test_generated_doc_is_up_to_date() -> None:
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("gen_fsm_doc", root / "scripts/gen_fsm_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert (root / "docs/state-machine.md").read_text(encoding="utf-8") == text
    # the doc shows every cell: 19 event rows of 13 states
    assert text.count("| Evt") == 19 + 19  # event list + table rows
