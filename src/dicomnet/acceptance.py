"""How the server answers an A-ASSOCIATE-RQ: the :class:`~dicomnet.ul.negotiation.AcceptorPolicy`
built from the AE's settings and the server's negotiation handlers.

Theory of operation
-------------------
The Upper Layer negotiates (PS3.8 section 7.1; :func:`dicomnet.ul.negotiation.negotiate`) from a
policy: which abstract syntaxes with which transfer syntaxes and roles (PS3.7 D.3.3.4) the AE
supports, the called/calling AE title rules, the maximum PDU length and asynchronous operations
window it offers, and its implementation identity. Two items of the request are the
application's to answer, through handlers bound to the server: the user identity (PS3.7 D.3.3.7,
EVT_USER_ID: ``(accepted, server response)``) and SOP class extended negotiation (PS3.7 D.3.3.5,
EVT_SOP_EXTENDED: ``{SOP class UID: our application information}``). A handler that fails or
answers in the wrong shape is logged; the user identity is then refused and the extended
negotiation item left unanswered, the conservative reading of each.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from dicomnet import _config
from dicomnet import events as evt
from dicomnet.presentation import DEFAULT_TRANSFER_SYNTAXES
from dicomnet.settings import Settings
from dicomnet.ul.negotiation import AcceptorPolicy
from dicomnet.ul.pdu import (
    AAssociateRQ,
    AsyncOpsWindow,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
)

__all__ = ["acceptor_policy"]

LOGGER = logging.getLogger("dicomnet.server")


def acceptor_policy(
    ae: Settings, handlers: evt.Handlers, assoc: evt.EventAssociation | None, rq: AAssociateRQ
) -> AcceptorPolicy:
    """How to answer ``rq`` (PS3.8 section 7.1, PS3.7 Annex D): the AE's supported contexts
    and roles, limits and identity, and the EVT_USER_ID / EVT_SOP_EXTENDED handlers bound to the
    server, called with an event on ``assoc`` (the association being negotiated)."""
    roles = {
        cx.abstract_syntax: (cx.scu_role is not False, cx.scp_role is not False)
        for cx in ae.supported_contexts
    }
    supported = ae.supported_map()
    promiscuous = ae.promiscuous_syntaxes
    if not promiscuous and _config.UNRESTRICTED_STORAGE_SERVICE:  # any SOP class as storage
        promiscuous = list(DEFAULT_TRANSFER_SYNTAXES)
    if promiscuous:  # anything else proposed: taken as a storage SOP class of its own
        for pc in rq.presentation_contexts:
            supported.setdefault(pc.abstract_syntax.rstrip("\0 "), list(promiscuous))
    window = (ae.maximum_operations_performed, ae.maximum_operations_invoked)
    ui = rq.user_information
    if ui.async_ops_window is not None and handlers.first(evt.EVT_ASYNC_OPS):
        window = _async_ops(handlers, assoc, ui.async_ops_window, window)
    if ui.common_extended_negotiations and handlers.first(evt.EVT_SOP_COMMON):
        _sop_common(handlers, assoc, ui.common_extended_negotiations)
    return AcceptorPolicy(
        ae_title=ae.ae_title,
        supported=supported,
        require_called_ae_title=bool(ae.require_called_aet),
        allowed_calling_ae_titles=list(ae.require_calling_aet) or None,
        roles=roles,
        max_pdata_length=ae.maximum_pdu_size,
        async_ops_window=window,
        implementation_class_uid=ae.implementation_class_uid,
        implementation_version_name=ae.implementation_version_name,
        user_identity=(
            functools.partial(_user_identity, handlers, assoc)
            if handlers.first(evt.EVT_USER_ID)
            else None
        ),
        extended_negotiation=(
            functools.partial(_extended, handlers, assoc)
            if handlers.first(evt.EVT_SOP_EXTENDED)
            else None
        ),
    )


def _async_ops(
    handlers: evt.Handlers,
    assoc: evt.EventAssociation | None,
    item: AsyncOpsWindow,
    default: tuple[int, int],
) -> tuple[int, int]:
    """EVT_ASYNC_OPS: the handler gets the requestor's ``invoked``/``performed`` (PS3.7 D.3.3.3)
    and returns ``(maximum invoked, maximum performed)``, the values of our A-ASSOCIATE-AC's
    item (its invoked value is what the requestor may invoke, i.e. what we perform at once)."""
    bound = handlers.first(evt.EVT_ASYNC_OPS)
    assert bound is not None
    fn, args = bound
    details = {"invoked": item.max_operations_invoked, "performed": item.max_operations_performed}
    try:
        result = fn(evt.Event(assoc, evt.EVT_ASYNC_OPS, details=details), *args)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"EVT_ASYNC_OPS handlers return (invoked, performed), not {result!r}")
        return (int(result[0]), int(result[1]))
    except Exception:
        LOGGER.exception("EVT_ASYNC_OPS handler failed: the AE's window is offered")
        return default


def _sop_common(
    handlers: evt.Handlers,
    assoc: evt.EventAssociation | None,
    items: Sequence[SOPClassCommonExtendedNegotiation],
) -> None:
    """EVT_SOP_COMMON: the handler sees the requestor's SOP Class Common Extended Negotiation
    items (PS3.7 D.3.3.6) as ``{SOP class UID: item}``; the standard defines no answer to them,
    so what it returns only tells the application (it is logged)."""
    bound = handlers.first(evt.EVT_SOP_COMMON)
    assert bound is not None
    fn, args = bound
    offered = {item.sop_class_uid: item for item in items}
    try:
        accepted = fn(evt.Event(assoc, evt.EVT_SOP_COMMON, details={"items": offered}), *args)
        LOGGER.debug("SOP class common extended negotiation: %s", accepted)
    except Exception:
        LOGGER.exception("EVT_SOP_COMMON handler failed")


def _user_identity(
    handlers: evt.Handlers, assoc: evt.EventAssociation | None, item: UserIdentityRQ
) -> tuple[bool, bytes | None]:
    """EVT_USER_ID: the handler returns (accepted, server response or None)."""
    bound = handlers.first(evt.EVT_USER_ID)
    assert bound is not None
    fn, args = bound
    try:
        result = fn(
            evt.Event(
                assoc,
                evt.EVT_USER_ID,
                user_id_type=item.user_identity_type,
                primary_field=item.primary_field,
                secondary_field=item.secondary_field,
                positive_response_requested=bool(item.positive_response_requested),
            ),
            *args,
        )
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"EVT_USER_ID handlers return (accepted, response), not {result!r}")
        accepted, response = result
        if response is not None and not isinstance(response, bytes):
            raise TypeError(f"the user identity server response must be bytes: {response!r}")
    except Exception:
        LOGGER.exception("EVT_USER_ID handler failed: rejecting the association")
        return False, None
    return bool(accepted), response


def _extended(
    handlers: evt.Handlers, assoc: evt.EventAssociation | None, item: SOPClassExtendedNegotiation
) -> bytes | None:
    """EVT_SOP_EXTENDED: the handler gets ``app_info`` ({SOP class UID: the requestor's
    service-class application information}) and returns {UID: our answer} (a missing UID,
    or None: no 56H item in the AC for it, PS3.7 D.3.3.5)."""
    bound = handlers.first(evt.EVT_SOP_EXTENDED)
    assert bound is not None
    fn, args = bound
    uid = item.sop_class_uid
    try:
        answers = fn(evt.Event(assoc, evt.EVT_SOP_EXTENDED,
                               app_info={uid: item.service_class_application_information}),
                     *args)  # fmt: skip
        if answers is not None and not isinstance(answers, dict):
            raise TypeError(f"EVT_SOP_EXTENDED handlers return a dict, not {answers!r}")
    except Exception:
        LOGGER.exception("EVT_SOP_EXTENDED handler failed: no extended negotiation answer")
        return None
    answer = (answers or {}).get(uid)
    return None if answer is None else bytes(answer)
