"""Who may talk to the archive, and what each peer may do.

Theory of operation
-------------------
A :class:`Peer` is a known remote AE: its AE title, the networks it connects from, optionally
the subject of the TLS client certificate it must present, and what it may do -- ``echo``,
``store``, ``find``, ``get``, ``move`` (to which destinations), ``n`` (the DIMSE-N services) --
plus an optional cap on its simultaneous associations. A peer with a ``port`` is also a C-MOVE
destination (at its first host, which must then be a single address).

:class:`PeerPolicy` is the :class:`~dicomnet.monitor.AccessPolicy` the server asks:

* at A-ASSOCIATE-RQ: a called AE title that is not ours is rejected 1/1/7 "called AE title not
  recognized" (when ``check_called``, the default, as DCMTK's dcmqrscp does); a calling AE that
  matches no peer (title, network and certificate together) is rejected 1/1/3 "calling AE
  title not recognized" unless ``allow_any``; a peer over its association cap gets 2/3/2
  "local limit exceeded" (PS3.8 Table 9-21);
* for each request: an operation the peer may not do, or a C-MOVE to a destination it may not
  use, is answered 0124H "Refused: Not Authorized" (PS3.7 Annex C) with an Error Comment,
  before any handler runs.

Callers admitted by ``allow_any`` (every caller when no peer is configured and the archive
listens on loopback only: the embedded default) may do everything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from dicomnet.dimse import primitives as P
from dicomnet.dimse.status import Status
from dicomnet.monitor import AccessPolicy, AssociationInfo, clip
from dicomnet.transport.aio import AsyncDriver

if TYPE_CHECKING:
    from dicomnet.association import Association

__all__ = ["OPERATIONS", "Peer", "PeerPolicy"]

#: What a peer may be allowed to do.
OPERATIONS = ("echo", "store", "find", "get", "move", "n")

_OPERATION_OF = {
    "C_ECHO": "echo", "C_STORE": "store", "C_FIND": "find", "C_GET": "get", "C_MOVE": "move",
}  # fmt: skip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Peer:
    """A known peer (see the module docstring)."""

    __slots__ = ("ae_title", "max_associations", "may", "move_to", "networks", "port",
                 "tls_subject")  # fmt: skip

    def __init__(
        self,
        ae_title: str,
        hosts: Iterable[str] = (),
        *,
        may: Iterable[str] = OPERATIONS,
        move_to: Iterable[str] | None = None,
        tls_subject: str | None = None,
        max_associations: int | None = None,
        port: int | None = None,
    ) -> None:
        self.ae_title = ae_title.strip()
        if not self.ae_title or len(self.ae_title) > 16:
            raise ValueError(f"peer AE title {ae_title!r}: 1 to 16 characters")
        self.networks: list[Network] = [ipaddress.ip_network(h, strict=False) for h in hosts]
        may = [m.lower() for m in may]
        unknown = sorted(set(may) - set(OPERATIONS))
        if unknown:
            raise ValueError(f"peer {ae_title}: unknown operation(s) {unknown}; "
                             f"known: {', '.join(OPERATIONS)}")  # fmt: skip
        self.may = frozenset(may)
        self.move_to = None if move_to is None else frozenset(d.strip() for d in move_to)
        self.tls_subject = tls_subject
        self.max_associations = max_associations
        if port is not None and not (self.networks and self.networks[0].num_addresses == 1):
            raise ValueError(f"peer {ae_title}: a port (C-MOVE destination) needs a first host "
                             "that is one address, not a network")  # fmt: skip
        self.port = port

    def matches(self, calling_ae: str, address: str, tls_subject: str | None) -> bool:
        if calling_ae != self.ae_title:
            return False
        if self.networks:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            if not any(ip in net for net in self.networks):
                return False
        return self.tls_subject is None or self.tls_subject == tls_subject

    @property
    def destination(self) -> tuple[str, int] | None:
        """(host, port) when this peer is also a C-MOVE destination."""
        if self.port is None or not self.networks:
            return None
        net = self.networks[0]
        return str(net.network_address), self.port


class PeerPolicy(AccessPolicy):
    """The archive's access rules (see the module docstring)."""

    def __init__(self, ae_title: str, peers: Sequence[Peer], *, check_called: bool = True,
                 allow_any: bool = False, max_per_ae: int | None = None) -> None:  # fmt: skip
        self.ae_title = ae_title.strip()
        self.peers = list(peers)
        self.check_called = check_called
        self.allow_any = allow_any
        self.max_per_ae = max_per_ae  # for every calling AE title without its own cap

    def find(self, calling_ae: str, address: str, tls_subject: str | None) -> Peer | None:
        for peer in self.peers:
            if peer.matches(calling_ae, address, tls_subject):
                return peer
        return None

    def admit(self, info: AssociationInfo) -> tuple[int, int, int] | None:
        if self.check_called and info.called_ae != self.ae_title:
            return (1, 1, 7)  # rejected-permanent, service-user, called AE not recognized
        peer = self.find(info.calling_ae, info.address, info.tls_subject)
        if peer is None and not self.allow_any:
            return (1, 1, 3)  # rejected-permanent, service-user, calling AE not recognized
        cap = peer.max_associations if peer is not None else None
        cap = self.max_per_ae if cap is None else cap
        if cap is not None and info.open_by_calling_ae >= cap:
            return (2, 3, 2)  # rejected-transient, presentation, local limit exceeded
        return None

    def permit(self, assoc: Association, request: P.DIMSEPrimitive) -> tuple[int, str] | None:
        calling = str(assoc.requestor.ae_title)
        driver = assoc.dul  # the server's connection: the TLS client certificate's subject
        subject = driver.tls_subject if isinstance(driver, AsyncDriver) else None
        peer = self.find(calling, str(assoc.requestor.address), subject)
        if peer is None:
            return None  # admitted by allow_any: everything is allowed
        name = type(request).__name__
        operation = _OPERATION_OF.get(name, "n" if name.startswith("N_") else name.lower())
        if operation not in peer.may:
            return Status.NOT_AUTHORIZED, f"{clip(calling, 16)} may not {operation}"
        if operation == "move" and isinstance(request, P.C_MOVE) and peer.move_to is not None:
            dest = str(request.MoveDestination or "").strip()
            if dest not in peer.move_to:
                return (Status.NOT_AUTHORIZED,
                        f"{clip(calling, 16)} may not move to {clip(dest, 16)}")  # fmt: skip
        return None
