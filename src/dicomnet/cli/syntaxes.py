"""Transfer syntax options of the tools, spelled as DCMTK spells them.

Theory of operation
-------------------
Senders (``storescu``) take ``-x?`` options (DCMTK's ``--propose-*``): by default they propose,
for each SOP class, the syntaxes its files are stored in plus Explicit and Implicit VR Little
Endian, each in a context of its own (:func:`dicomnet.transcode.propose_syntaxes`); ``-xi``
narrows that to Implicit VR Little Endian only, and the compression/deflate options add the
named syntax, which uncompressed files are then converted into when the peer accepts it.

Receivers (``getscu``, ``movescu --store-port``, ``storescp``) take ``+x?`` options (DCMTK's
``--prefer-*`` / ``--accept-all``): by default (``+xa``) they accept every transfer syntax,
uncompressed first, so whatever a peer stores arrives as it is; ``+x=`` narrows to the
uncompressed syntaxes, ``+xi`` to Implicit VR Little Endian, and the others put the named syntax
before the uncompressed ones.

pynetdicom's apps spell the uncompressed choices ``-xe`` / ``--request-little`` on a sender and
``-xe`` / ``--prefer-little`` on a receiver (``-xi``: ``--implicit``): those spellings are
accepted too, with the meanings above.
"""

from __future__ import annotations

import argparse

from dicomnet.presentation import RECEIVE_TRANSFER_SYNTAXES

__all__ = [
    "ALL_SYNTAXES",
    "accepted_syntaxes",
    "add_accept_options",
    "add_propose_options",
    "proposal",
    "proposed_syntaxes",
]

ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"
EBE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
_P = "1.2.840.10008.1.2.4."
RLE = "1.2.840.10008.1.2.5"

# (short, long, transfer syntax or None, help): DCMTK's option names (storescu, getscu, movescu)
_NAMED: tuple[tuple[str, str, str | None, str], ...] = (
    ("x=", "uncompr", None, "uncompressed: Explicit then Implicit VR Little Endian"),
    ("xe", "little", ELE, "Explicit VR Little Endian first"),
    ("xb", "big", EBE, "Explicit VR Big Endian first"),
    ("xi", "implicit", ILE, "Implicit VR Little Endian only"),
    ("xs", "lossless", _P + "70", "JPEG lossless (process 14, SV1)"),
    ("xy", "jpeg8", _P + "50", "JPEG baseline (lossy, 8 bit)"),
    ("xx", "jpeg12", _P + "51", "JPEG extended (lossy, 12 bit)"),
    ("xv", "j2k-lossless", _P + "90", "JPEG 2000 lossless"),
    ("xw", "j2k-lossy", _P + "91", "JPEG 2000 (lossy)"),
    ("xt", "jls-lossless", _P + "80", "JPEG-LS lossless"),
    ("xu", "jls-lossy", _P + "81", "JPEG-LS near-lossless"),
    ("xr", "rle", RLE, "RLE lossless"),
    ("xd", "deflated", DEFLATED, "Deflated Explicit VR Little Endian"),
)

# the uncompressed choices, which pynetdicom's apps also offer (as -x? on both sides)
_PYNETDICOM_SHORT = ("x=", "xe", "xb", "xi")

#: What "accept everything" proposes or accepts, best first: the uncompressed syntaxes every
#: peer has, then the compressed ones as they were stored (the order a receiver that takes the
#: requestor's first choice sees; an acceptor's own order decides otherwise).
ALL_SYNTAXES: tuple[str, ...] = (
    ELE, ILE, DEFLATED, EBE,
    _P + "50", _P + "51", _P + "57", _P + "70", _P + "80", _P + "81", _P + "90", _P + "91",
    _P + "92", _P + "93", _P + "201", _P + "202", _P + "203", RLE,
    _P + "100", _P + "100.1", _P + "101", _P + "101.1", _P + "102", _P + "102.1", _P + "103",
    _P + "103.1", _P + "104", _P + "104.1", _P + "105", _P + "105.1", _P + "106", _P + "106.1",
    _P + "107", _P + "108", "1.2.840.10008.1.2.1.98",
)  # fmt: skip


def add_propose_options(p: argparse.ArgumentParser) -> None:
    """storescu's ``-x?`` / ``--propose-*`` options (mutually exclusive, ``dest="propose"``)."""
    group = p.add_argument_group("network transfer syntaxes (outgoing)")
    excl = group.add_mutually_exclusive_group()
    for short, long, _ts, text in _NAMED:
        # pynetdicom's storescu: --request-little/-big/-implicit
        extra = [f"--request-{long}"] if short in _PYNETDICOM_SHORT[1:] else []
        excl.add_argument(
            f"-{short}", f"--propose-{long}", *extra, dest="propose", action="store_const",
            const=short, help=f"propose {text}" + (" (default)" if short == "x=" else ""),
        )  # fmt: skip
    p.set_defaults(propose="x=")


def proposal(choice: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(preferred syntaxes, uncompressed syntaxes, propose the files' own syntaxes) for the
    ``-x?`` option ``choice``."""
    ts = {short: syntax for short, _l, syntax, _h in _NAMED}[choice]
    if choice == "xi":
        return (), (ILE,), False
    if ts is None or ts == ELE:
        return (), (ELE, ILE), True
    return (ts,), (ELE, ILE), True


def add_accept_options(p: argparse.ArgumentParser, what: str) -> None:
    """The receivers' ``+x?`` / ``--prefer-*`` options (``dest="accept"``); ``what`` names
    the incoming data in the help text. The parser needs ``prefix_chars="-+"``."""
    group = p.add_argument_group(f"network transfer syntaxes ({what})")
    excl = group.add_mutually_exclusive_group()
    excl.add_argument(
        "+xa", "--accept-all", dest="accept", action="store_const", const="xa",
        help="accept every transfer syntax, uncompressed first (default)",
    )  # fmt: skip
    for short, long, _ts, text in _NAMED:
        # pynetdicom's storescp: -x=, -xe, -xb, -xi (--implicit)
        extra = [f"-{short}"] if short in _PYNETDICOM_SHORT else []
        extra += ["--implicit"] if short == "xi" else []
        excl.add_argument(
            f"+{short}", f"--prefer-{long}", *extra, dest="accept", action="store_const",
            const=short,
            help=f"accept {text}" + ("" if short in ("x=", "xi") else ", then uncompressed"),
        )  # fmt: skip
    p.set_defaults(accept="xa")


def accepted_syntaxes(choice: str) -> list[str]:
    """The transfer syntaxes a receiver accepts for the ``+x?`` option ``choice``, best first."""
    if choice == "xa":
        return list(ALL_SYNTAXES)
    ts = {short: syntax for short, _l, syntax, _h in _NAMED}[choice]
    if choice == "xi":
        return [ILE]
    if choice == "xb":
        return [EBE, ELE, ILE]
    uncompressed = [ELE, EBE, ILE]
    if ts is None or ts == ELE:
        return uncompressed
    return [ts, *uncompressed]



def proposed_syntaxes(choice: str) -> list[str]:
    """:func:`accepted_syntaxes` for a *requestor* that receives (getscu's storage contexts):
    with ``+xa``, :data:`~dicomnet.presentation.RECEIVE_TRANSFER_SYNTAXES` (no video syntaxes:
    ~120 contexts of 35 syntaxes would make an A-ASSOCIATE-RQ of ~120 KB)."""
    if choice == "xa":
        return list(RECEIVE_TRANSFER_SYNTAXES)
    return accepted_syntaxes(choice)
