"""What the service classes need from an association: the :class:`ServiceAssociation` protocol.

Theory of operation
-------------------
The services (building requests, answering requests, preparing C-STOREs) are written against
this protocol, not against a concrete association class, so they sit below every association
implementation (blocking, asyncio, the server's acceptor side) and import none of them. It is
exactly what they read: the AE's settings, the association's identity for the events handlers
receive, the negotiated presentation contexts (PS3.8 section 7.1.1.13; roles, PS3.7 D.3.3.4)
and the handlers bound to the association.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from dicomnet.events import EventAssociation, Handlers
from dicomnet.presentation import PresentationContext

__all__ = ["ServiceAssociation"]


class ServiceAssociation(EventAssociation, Protocol):
    """An established association as the service classes see it: what an event reads of it
    (settings, requestor, acceptor), its contexts and its handlers."""

    @property
    def handlers(self) -> Handlers:
        """Handlers bound to the association (requests the peer sends on it)."""
        ...

    def context_by_id(self, context_id: int) -> PresentationContext | None: ...

    def find_context(
        self,
        abstract_syntax: str,
        transfer_syntax: str | Sequence[str] | None = None,
        role: Literal["scu", "scp"] = "scu",
    ) -> PresentationContext:
        """An accepted context for ``abstract_syntax`` on which we may play ``role``;
        raises NoPresentationContextError."""
        ...

    def accepted_syntaxes(
        self, abstract_syntax: str, role: Literal["scu", "scp"] = "scu"
    ) -> list[str]: ...
