"""Which presentation contexts a sender proposes, and which accepted one each instance takes.

Theory of operation
-------------------
PS3.8 9.3.2.2: each presentation context pairs one SOP class with the transfer syntaxes offered
for it, and the acceptor keeps at most one of them. A sender that offers a SOP class's stored
syntax and the uncompressed ones *in one context* gets one syntax back, and every instance of
that class in any other syntax must then be converted (or fails); offered *in separate
contexts*, each can be accepted on its own. So :func:`propose_syntaxes` lists, for one SOP
class, one context per syntax: the syntaxes the user asked to prefer (``--propose-*``), the
syntaxes the instances are stored in, then Explicit and Implicit VR Little Endian, which every
storage SCP supports (PS3.5 10.1). PS3.8 allows 128 contexts per association; callers split
SOP classes over several associations when the proposals need more.

:func:`rank_targets` orders the syntaxes accepted for an instance's SOP class, best first:

1. for uncompressed data, the syntaxes the user asked to prefer (e.g. RLE with
   ``--propose-rle``), when this installation can encode them;
2. the instance's own syntax: sent as it is, byte for byte, zero-copy;
3. the native syntaxes (Explicit VR LE, Implicit VR LE, Deflated, Big Endian): a lossless
   re-encoding for native data, a decompression for compressed data;
4. other encapsulated syntaxes with a lossless encoder installed: compression or transcoding
   (never into a lossy syntax unless the user asked for it in step 1).

The first entry is what the sender converts to; an empty list means that nothing accepted for
the SOP class can carry the instance.

:func:`context_plan` fits the proposals for many (SOP class, stored syntax) pairs into one
association: one context per syntax while they fit in ``limit``, then the uncompressed
syntaxes share one context per SOP class, and last each SOP class gets that shared context
only (its instances are then converted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dicomnet.transcode.syntax import (
    NATIVE,
    UNCOMPRESSED,
    can_convert,
    is_lossless_target,
    is_native,
)

__all__ = ["context_plan", "propose_syntaxes", "rank_targets"]


def propose_syntaxes(
    own: Iterable[str],
    preferred: Sequence[str] = (),
    uncompressed: Sequence[str] = UNCOMPRESSED,
) -> list[str]:
    """The syntaxes to propose for one SOP class, each in a context of its own, in order."""
    out: list[str] = []
    for ts in (*preferred, *sorted(set(own)), *uncompressed):
        if ts and ts not in out:
            out.append(ts)
    return out


def rank_targets(source: str, accepted: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    """The accepted syntaxes an instance stored in ``source`` can be sent in, best first."""
    acc = list(dict.fromkeys(accepted))
    out: list[str] = []
    native_source = is_native(source)
    if native_source or source not in acc:
        out.extend(ts for ts in preferred if ts in acc and can_convert(source, ts))
    if source in acc:
        out.append(source)
    out.extend(ts for ts in NATIVE if ts in acc)
    out.extend(
        ts for ts in acc
        if not is_native(ts) and is_lossless_target(ts) and can_convert(source, ts)
    )  # fmt: skip
    return list(dict.fromkeys(out))


def context_plan(
    pairs: Iterable[tuple[str, str | None]],
    preferred: Sequence[str] = (),
    uncompressed: Sequence[str] = UNCOMPRESSED,
    limit: int = 128,
) -> list[tuple[str, tuple[str, ...]]]:
    """(SOP class, transfer syntaxes) contexts for instances given as (SOP class, stored
    syntax) pairs, at most ``limit`` of them (see the module docstring)."""
    own: dict[str, list[str]] = {}
    for sop_class, ts in pairs:
        syntaxes = own.setdefault(sop_class, [])
        if ts and ts not in syntaxes:
            syntaxes.append(ts)
    full: list[tuple[str, tuple[str, ...]]] = [
        (sop_class, (ts,))
        for sop_class, syntaxes in own.items()
        for ts in propose_syntaxes(syntaxes, preferred, uncompressed)
    ]
    if len(full) <= limit:
        return full
    shared = tuple(uncompressed)
    merged: list[tuple[str, tuple[str, ...]]] = []
    for sop_class, syntaxes in own.items():
        merged.extend((sop_class, (ts,)) for ts in (*preferred, *syntaxes) if ts not in shared)
        merged.append((sop_class, shared))
    if len(merged) <= limit:
        return merged
    return [(sop_class, shared) for sop_class in own][:limit]
