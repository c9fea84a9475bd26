"""The DICOM Upper Layer state machine, PS3.8 section 9.2, as data.

Theory of operation
-------------------
PS3.8 defines the Upper Layer protocol as a finite state machine: thirteen states (Tables 9-1 to
9-5), nineteen events (Table 9-10, left column) and thirty actions (Tables 9-6 to 9-9). Table 9-10
names, for each (state, event) pair, the action to perform; each action names the next state.
This module holds exactly that, and nothing else:

* :class:`State`, :class:`Event` and :class:`Action` enumerate the vocabulary;
* :data:`TRANSITIONS` maps every non-blank cell of Table 9-10 to its action;
* :data:`ACTIONS` gives each action's definition and next state; the two actions whose next
  state is conditional are resolved by :func:`next_state`:

  - AE-6 (A-ASSOCIATE-RQ received in Sta2): Sta3 if the request is acceptable to the service
    provider (PS3.8 Table 9-6), otherwise an A-ASSOCIATE-RJ is sent and the next state is Sta13;
  - AR-8 (A-RELEASE-RQ received in Sta7, a release collision): Sta9 on the association-requestor,
    Sta10 on the association-acceptor (PS3.8 Table 9-8).

Blank cells
-----------
A pair absent from :data:`TRANSITIONS` is a blank cell of Table 9-10. PS3.8 gives no action for
blank cells; they fall in three groups and :mod:`dicomnet.ul.connection` treats them as follows:

* a *local primitive* in the wrong state (e.g. P-DATA request in Sta2, Evt9): the caller broke
  the service sequencing rules of PS3.8 section 7; it is refused with
  ``ProtocolError(local=True)`` and the state does not change;
* a *received PDU* in Sta1 or Sta4 (no transport connection exists, so none can be received):
  the bytes are discarded;
* a transport or timer event that cannot occur in that state (Evt2 outside Sta4, Evt5 outside
  Sta1, Evt17 in Sta1, Evt18 outside Sta2/Sta13): Evt17 in Sta1 and stale timers are ignored
  (idempotent), the others are refused as local errors.

Two primitives are deliberately made idempotent rather than errors: an A-ABORT request (Evt15)
in Sta1 or Sta13 does nothing (there is no association left to abort), and in Sta2 (transport
open, no A-ASSOCIATE-RQ yet, so no association exists) it closes the transport like ARTIM expiry
does (the AA-2 action). These are listed in :data:`LOCAL_CHOICES` so that tests and the generated
documentation show them apart from the standard's own cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, IntEnum
from types import MappingProxyType

from dicomnet._record import Record

__all__ = [
    "ACTIONS",
    "EVENT_DESCRIPTIONS",
    "LOCAL_CHOICES",
    "STATE_DESCRIPTIONS",
    "TRANSITIONS",
    "Action",
    "ActionSpec",
    "Event",
    "State",
    "lookup",
    "next_state",
]


class State(IntEnum):
    """PS3.8 Tables 9-1 to 9-5."""

    STA1 = 1
    STA2 = 2
    STA3 = 3
    STA4 = 4
    STA5 = 5
    STA6 = 6
    STA7 = 7
    STA8 = 8
    STA9 = 9
    STA10 = 10
    STA11 = 11
    STA12 = 12
    STA13 = 13

    @property
    def label(self) -> str:
        return f"Sta{self.value}"


class Event(IntEnum):
    """PS3.8 Table 9-10, the event column."""

    EVT1 = 1
    EVT2 = 2
    EVT3 = 3
    EVT4 = 4
    EVT5 = 5
    EVT6 = 6
    EVT7 = 7
    EVT8 = 8
    EVT9 = 9
    EVT10 = 10
    EVT11 = 11
    EVT12 = 12
    EVT13 = 13
    EVT14 = 14
    EVT15 = 15
    EVT16 = 16
    EVT17 = 17
    EVT18 = 18
    EVT19 = 19

    @property
    def label(self) -> str:
        return f"Evt{self.value}"


class Action(Enum):
    """PS3.8 Tables 9-6 (AE), 9-7 (DT), 9-8 (AR) and 9-9 (AA)."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"


S = State
E = Event
A = Action

STATE_DESCRIPTIONS: Mapping[State, str] = MappingProxyType(
    {
        S.STA1: "Idle",
        S.STA2: "Transport connection open (awaiting A-ASSOCIATE-RQ PDU)",
        S.STA3: "Awaiting local A-ASSOCIATE response primitive",
        S.STA4: "Awaiting transport connection opening to complete",
        S.STA5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
        S.STA6: "Association established and ready for data transfer",
        S.STA7: "Awaiting A-RELEASE-RP PDU",
        S.STA8: "Awaiting local A-RELEASE response primitive",
        S.STA9: "Release collision, requestor side: awaiting A-RELEASE response primitive",
        S.STA10: "Release collision, acceptor side: awaiting A-RELEASE-RP PDU",
        S.STA11: "Release collision, requestor side: awaiting A-RELEASE-RP PDU",
        S.STA12: "Release collision, acceptor side: awaiting A-RELEASE response primitive",
        S.STA13: "Awaiting transport connection close indication (no association)",
    }
)

EVENT_DESCRIPTIONS: Mapping[Event, str] = MappingProxyType(
    {
        E.EVT1: "A-ASSOCIATE request (local user)",
        E.EVT2: "Transport connection confirm (local transport service)",
        E.EVT3: "A-ASSOCIATE-AC PDU received",
        E.EVT4: "A-ASSOCIATE-RJ PDU received",
        E.EVT5: "Transport connection indication (local transport service)",
        E.EVT6: "A-ASSOCIATE-RQ PDU received",
        E.EVT7: "A-ASSOCIATE response primitive (accept)",
        E.EVT8: "A-ASSOCIATE response primitive (reject)",
        E.EVT9: "P-DATA request primitive",
        E.EVT10: "P-DATA-TF PDU received",
        E.EVT11: "A-RELEASE request primitive",
        E.EVT12: "A-RELEASE-RQ PDU received",
        E.EVT13: "A-RELEASE-RP PDU received",
        E.EVT14: "A-RELEASE response primitive",
        E.EVT15: "A-ABORT request primitive",
        E.EVT16: "A-ABORT PDU received",
        E.EVT17: "Transport connection closed indication",
        E.EVT18: "ARTIM timer expired",
        E.EVT19: "Unrecognized or invalid PDU received",
    }
)


class ActionSpec(Record):
    """One action of PS3.8 Tables 9-6 to 9-9; ``next_state`` None = conditional (AE-6, AR-8)."""

    __slots__ = ("action", "definition", "next_state")
    action: Action
    definition: str
    next_state: State | None

    def __init__(self, action: Action, definition: str, next_state: State | None) -> None:
        _set = object.__setattr__  # frozen: past Record.__setattr__
        _set(self, "action", action)
        _set(self, "definition", definition)
        _set(self, "next_state", next_state)


def _spec(action: Action, definition: str, nxt: State | None) -> tuple[Action, ActionSpec]:
    return action, ActionSpec(action, definition, nxt)


ACTIONS: Mapping[Action, ActionSpec] = MappingProxyType(
    dict(
        [
            # PS3.8 Table 9-6: association establishment related actions
            _spec(A.AE_1, "Issue TRANSPORT CONNECT request to the local transport service", S.STA4),
            _spec(A.AE_2, "Send A-ASSOCIATE-RQ PDU", S.STA5),
            _spec(A.AE_3, "Issue A-ASSOCIATE confirmation (accept) primitive", S.STA6),
            _spec(
                A.AE_4,
                "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection",
                S.STA1,
            ),
            _spec(A.AE_5, "Issue transport connection response primitive; start ARTIM", S.STA2),
            _spec(
                A.AE_6,
                "Stop ARTIM; if the A-ASSOCIATE-RQ is acceptable to the service provider issue "
                "A-ASSOCIATE indication (Sta3), otherwise send A-ASSOCIATE-RJ PDU and start "
                "ARTIM (Sta13)",
                None,
            ),
            _spec(A.AE_7, "Send A-ASSOCIATE-AC PDU", S.STA6),
            _spec(A.AE_8, "Send A-ASSOCIATE-RJ PDU and start ARTIM", S.STA13),
            # PS3.8 Table 9-7: data transfer related actions
            _spec(A.DT_1, "Send P-DATA-TF PDU", S.STA6),
            _spec(A.DT_2, "Issue P-DATA indication primitive", S.STA6),
            # PS3.8 Table 9-8: association release related actions
            _spec(A.AR_1, "Send A-RELEASE-RQ PDU", S.STA7),
            _spec(A.AR_2, "Issue A-RELEASE indication primitive", S.STA8),
            _spec(
                A.AR_3,
                "Issue A-RELEASE confirmation primitive and close transport connection",
                S.STA1,
            ),
            _spec(A.AR_4, "Send A-RELEASE-RP PDU and start ARTIM", S.STA13),
            _spec(A.AR_5, "Stop ARTIM", S.STA1),
            _spec(A.AR_6, "Issue P-DATA indication", S.STA7),
            _spec(A.AR_7, "Send P-DATA-TF PDU", S.STA8),
            _spec(
                A.AR_8,
                "Issue A-RELEASE indication (release collision); association-requestor: Sta9, "
                "association-acceptor: Sta10",
                None,
            ),
            _spec(A.AR_9, "Send A-RELEASE-RP PDU", S.STA11),
            _spec(A.AR_10, "Issue A-RELEASE confirmation primitive", S.STA12),
            # PS3.8 Table 9-9: association abort related actions
            _spec(
                A.AA_1,
                "Send A-ABORT PDU and start (or restart) ARTIM",
                S.STA13,
            ),
            _spec(A.AA_2, "Stop ARTIM if running; close transport connection", S.STA1),
            _spec(
                A.AA_3,
                "Issue A-ABORT (service-user source) or A-P-ABORT (service-provider source) "
                "indication and close transport connection",
                S.STA1,
            ),
            _spec(A.AA_4, "Issue A-P-ABORT indication primitive", S.STA1),
            _spec(A.AA_5, "Stop ARTIM", S.STA1),
            _spec(A.AA_6, "Ignore PDU", S.STA13),
            _spec(A.AA_7, "Send A-ABORT PDU", S.STA13),
            _spec(
                A.AA_8,
                "Send A-ABORT PDU (service-provider source), issue A-P-ABORT indication and "
                "start ARTIM",
                S.STA13,
            ),
        ]
    )
)


def _row(event: Event, cells: Mapping[State, Action]) -> dict[tuple[State, Event], Action]:
    return {(state, event): action for state, action in cells.items()}


def _states(first: int, last: int, action: Action) -> dict[State, Action]:
    return {State(n): action for n in range(first, last + 1)}


# PS3.8 Table 9-10, one event (row) at a time; every non-blank cell is listed.
_TABLE: dict[tuple[State, Event], Action] = {}
for _event, _cells in (
    (E.EVT1, {S.STA1: A.AE_1}),
    (E.EVT2, {S.STA4: A.AE_2}),
    (
        E.EVT3,
        {S.STA2: A.AA_1, S.STA3: A.AA_8, S.STA5: A.AE_3}
        | _states(6, 12, A.AA_8)
        | {S.STA13: A.AA_6},
    ),
    (
        E.EVT4,
        {S.STA2: A.AA_1, S.STA3: A.AA_8, S.STA5: A.AE_4}
        | _states(6, 12, A.AA_8)
        | {S.STA13: A.AA_6},
    ),
    (E.EVT5, {S.STA1: A.AE_5}),
    (
        E.EVT6,
        {S.STA2: A.AE_6, S.STA3: A.AA_8, S.STA5: A.AA_8}
        | _states(6, 12, A.AA_8)
        | {S.STA13: A.AA_7},
    ),
    (E.EVT7, {S.STA3: A.AE_7}),
    (E.EVT8, {S.STA3: A.AE_8}),
    (E.EVT9, {S.STA6: A.DT_1, S.STA8: A.AR_7}),
    (
        E.EVT10,
        {S.STA2: A.AA_1, S.STA3: A.AA_8, S.STA5: A.AA_8, S.STA6: A.DT_2, S.STA7: A.AR_6}
        | _states(8, 12, A.AA_8)
        | {S.STA13: A.AA_6},
    ),
    (E.EVT11, {S.STA6: A.AR_1}),
    (
        E.EVT12,
        {S.STA2: A.AA_1, S.STA3: A.AA_8, S.STA5: A.AA_8, S.STA6: A.AR_2, S.STA7: A.AR_8}
        | _states(8, 12, A.AA_8)
        | {S.STA13: A.AA_6},
    ),
    (
        E.EVT13,
        {S.STA2: A.AA_1, S.STA3: A.AA_8}
        | _states(5, 12, A.AA_8)
        | {S.STA7: A.AR_3, S.STA10: A.AR_10, S.STA11: A.AR_3, S.STA13: A.AA_6},
    ),
    (E.EVT14, {S.STA8: A.AR_4, S.STA9: A.AR_9, S.STA12: A.AR_4}),
    (E.EVT15, {S.STA3: A.AA_1, S.STA4: A.AA_2} | _states(5, 12, A.AA_1)),
    (E.EVT16, {S.STA2: A.AA_2, S.STA3: A.AA_3} | _states(5, 12, A.AA_3) | {S.STA13: A.AA_2}),
    (E.EVT17, {S.STA2: A.AA_5} | _states(3, 12, A.AA_4) | {S.STA13: A.AR_5}),
    (E.EVT18, {S.STA2: A.AA_2, S.STA13: A.AA_2}),
    (
        E.EVT19,
        {S.STA2: A.AA_1, S.STA3: A.AA_8} | _states(5, 12, A.AA_8) | {S.STA13: A.AA_7},
    ),
):
    _TABLE.update(_row(_event, _cells))

TRANSITIONS: Mapping[tuple[State, Event], Action] = MappingProxyType(_TABLE)

#: Blank cells of Table 9-10 that we give a behaviour anyway (see the module docstring).
#: ``None`` means "no action, state unchanged".
LOCAL_CHOICES: Mapping[tuple[State, Event], Action | None] = MappingProxyType(
    {
        (S.STA1, E.EVT15): None,
        (S.STA2, E.EVT15): A.AA_2,
        (S.STA13, E.EVT15): None,
        (S.STA1, E.EVT17): None,
    }
)


def lookup(state: State, event: Event) -> Action | None:
    """The action of Table 9-10 for ``(state, event)``, or None for a blank cell."""
    return TRANSITIONS.get((state, event))


def next_state(action: Action, *, requestor: bool, acceptable: bool = True) -> State:
    """The state after ``action``.

    ``requestor`` (AR-8): whether this side is the association-requestor.
    ``acceptable`` (AE-6): whether the service provider accepts the A-ASSOCIATE-RQ.
    """
    if action is Action.AE_6:
        return State.STA3 if acceptable else State.STA13
    if action is Action.AR_8:
        return State.STA9 if requestor else State.STA10
    nxt = ACTIONS[action].next_state
    assert nxt is not None
    return nxt
