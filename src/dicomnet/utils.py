"""Small helpers under the names pynetdicom programs import them by (``from dicomnet.utils
import set_ae, pretty_bytes``).

Theory of operation
-------------------
pynetdicom's own applications and many programs built on them convert and check command-line
values with these functions. dicomnet does the same checks itself where values enter (an AE
title when a ``Settings`` field is set, :func:`dicomnet.settings.validate_ae_title`; a UID of a
received command, :func:`dicomnet.uid.is_valid_uid`), so here they are only the program-facing
spellings:

* :func:`set_ae` / :func:`set_uid`: a value as the parameter it will be, checked by the
  validator that :data:`dicomnet._config.VALIDATORS` holds for its VR (PS3.5 Table 6.2-1: AE
  at most 16 characters, no backslash or control character; UI at most 64 characters of digits
  and dots), ``ValueError`` naming the parameter when it fails, ``TypeError`` for a value of
  another type. ``None`` and the empty string pass unless the caller says otherwise.
* :func:`validate_uid`: the UI validator, or PS3.5 9.1 conformance (no leading zero in a
  component, no empty component) when ``_config.ENFORCE_UID_CONFORMANCE`` is set.
* :func:`decode_bytes`: an AE title or UID received as bytes, ASCII first, then each codec of
  ``_config.CODECS``.
* :func:`pretty_bytes`: bytes as lines of hexadecimal pairs, for logs.
* :func:`make_target` and :func:`set_timer_resolution`: thread targets that carry the caller's
  context variables when ``_config.PASS_CONTEXTVARS`` asks for it, and a context manager that
  changes nothing (dicomnet waits on sockets and conditions, never on a timer whose
  resolution matters).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any

from dicomnet import _config
from dicomnet.uid import is_valid_uid

__all__ = [
    "decode_bytes",
    "make_target",
    "pretty_bytes",
    "set_ae",
    "set_timer_resolution",
    "set_uid",
    "validate_uid",
]

LOG = logging.getLogger("dicomnet")


def decode_bytes(encoded_value: bytes) -> str:
    """``encoded_value`` as text: ASCII if it is, else the first codec of ``_config.CODECS``
    that decodes it (characters outside ASCII dropped); ``ValueError`` when none does."""
    tried = ["ascii"]
    try:
        return encoded_value.decode("ascii")
    except UnicodeDecodeError:
        pass
    for codec in _config.CODECS:
        if codec.lower() in ("ascii", "us-ascii", "646"):
            continue
        tried.append(codec)
        try:
            text = encoded_value.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        return text.encode("ascii", "ignore").decode("ascii")
    shown = " ".join(f"{b:02X}" for b in encoded_value)
    raise ValueError(f"cannot decode '{shown}' with the {', '.join(tried)} codec(s)")


def pretty_bytes(
    bytestream: bytes | BytesIO,
    prefix: str = "  ",
    delimiter: str = "  ",
    items_per_line: int = 16,
    max_size: int | None = 512,
    suffix: str = "",
) -> list[str]:
    """``bytestream`` as lines of ``items_per_line`` lower-case hex pairs joined by
    ``delimiter``, each between ``prefix`` and ``suffix``. With more than ``max_size`` bytes
    only the whole lines within ``max_size`` are given, after a first line saying so."""
    data = bytestream.getvalue() if isinstance(bytestream, BytesIO) else bytes(bytestream)
    step = max(1, items_per_line)
    lines: list[str] = []
    for start in range(0, len(data), step):
        end = min(start + step, len(data))
        if max_size is not None and end > max_size:
            lines.insert(0, f"{prefix}Only dumping {max_size} bytes.")
            break
        lines.append(prefix + delimiter.join(f"{b:02x}" for b in data[start:end]) + suffix)
    return lines


def _type_error(name: str, wanted: str, value: object) -> TypeError:
    return TypeError(f"'{name}' must be {wanted}, not '{type(value).__name__}'")


def set_ae(value: str | None, name: str, allow_empty: bool = True,
           allow_none: bool = True) -> str | None:  # fmt: skip
    """``value`` as an AE-like parameter called ``name`` (see the module docstring): returned
    as given when it passes ``_config.VALIDATORS["AE"]``."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise _type_error(name, "str or None" if allow_none else "str", value)
    if not value.strip(" "):
        if allow_empty:
            return value
        what = "must not consist entirely of spaces" if value else "must not be an empty str"
        raise ValueError(f"Invalid '{name}' value - {what}")
    ok, reason = _config.VALIDATORS["AE"](value)
    if not ok:
        raise ValueError(f"Invalid '{name}' value '{value}' - {reason}")
    return value


def validate_uid(uid: str) -> bool:
    """Whether ``uid`` is acceptable: PS3.5 9.1 conformant when
    ``_config.ENFORCE_UID_CONFORMANCE`` is set, else passing ``_config.VALIDATORS["UI"]``."""
    if _config.ENFORCE_UID_CONFORMANCE:
        return is_valid_uid(str(uid))
    return bool(_config.VALIDATORS["UI"](str(uid))[0])


def set_uid(value: str | bytes | None, name: str, allow_empty: bool = True,
            allow_none: bool = True, validate: bool = True) -> Any:  # fmt: skip
    """``value`` as a ``pydicom.uid.UID`` called ``name`` (see the module docstring); a value
    that is valid but not PS3.5 9.1 conformant is logged, not refused."""
    from pydicom.uid import UID  # lazy: pydicom only for programs that call this

    if value is None and allow_none:
        return None
    if isinstance(value, bytes):
        value = decode_bytes(value)
    if not isinstance(value, str):
        wanted = "str, bytes, UID or None" if allow_none else "str, bytes or UID"
        raise _type_error(name, wanted, value)
    uid = UID(value)
    if not uid:
        if allow_empty:
            return uid
        raise ValueError(f"Invalid '{name}' value - must not be an empty str")
    if validate:
        if not validate_uid(uid):
            ok, reason = _config.VALIDATORS["UI"](str(uid))
            why = reason if not ok else "not conformant to PS3.5 9.1"
            raise ValueError(f"Invalid '{name}' value '{uid}' - {why}")
        if not is_valid_uid(str(uid)):
            LOG.warning("Non-conformant '%s' value '%s'", name, uid)
    return uid


def make_target(target_fn: Callable[..., Any]) -> Callable[..., Any]:
    """``target_fn`` for a new thread: run in a copy of the caller's context variables when
    ``_config.PASS_CONTEXTVARS`` is set, as it is otherwise."""
    if not _config.PASS_CONTEXTVARS:
        return target_fn
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> Any:
        return context.run(target_fn, *args, **kwargs)

    return run


@contextmanager
def set_timer_resolution(resolution: float | None) -> Iterator[None]:
    """A block run as it is (see the module docstring); ``resolution`` is accepted."""
    yield
