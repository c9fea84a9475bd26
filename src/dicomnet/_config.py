"""Module-level switches, under the names and in the place pynetdicom programs set them
(``from dicomnet import _config; _config.UNRESTRICTED_STORAGE_SERVICE = True``).

Theory of operation
-------------------
Each switch is read where it applies, at the time it applies (a change takes effect for the
next association or event), so setting one before or after creating an AE both work:

* ``UNRESTRICTED_STORAGE_SERVICE``: a server accepts any abstract syntax proposed that it does
  not list, as a Storage SOP class with the default transfer syntaxes, answered by its
  EVT_C_STORE handler (PS3.4 Annex B; ``dicomnet storescp --promiscuous`` does the same).
* ``STORE_RECV_CHUNKED_DATASET``: a C-STORE handler's ``event.dataset_path`` is the path of a
  Part 10 file (PS3.10 section 7) holding the received data set. dicomnet never needs the
  switch to keep large data sets out of memory (they are spooled to files above a threshold
  anyway); with it, ``dataset_path`` is available for every C-STORE.
* ``LOG_HANDLER_LEVEL``: ``"standard"`` (default) or ``"none"``; with ``"none"`` the
  :func:`dicomnet.debug_logger` output stays quiet below warnings.
* The other switches are accepted and documented in docs/migrating-from-pynetdicom.md:
  ``ENFORCE_UID_CONFORMANCE`` (dicomnet always checks UIDs of received commands, PS3.5
  9.1, and leniently those of files it sends), ``DECODE_STORE_DATASETS`` (data sets are always
  decoded lazily, on first access to ``event.dataset``), ``STORE_SEND_CHUNKED_DATASET``
  (file-backed sends are always streamed), ``USE_SHORT_DIMSE_AET``, ``LOG_REQUEST_IDENTIFIERS``,
  ``LOG_RESPONSE_IDENTIFIERS``, ``PASS_CONTEXTVARS``, ``WINDOWS_TIMER_RESOLUTION``.
* ``VALIDATORS`` (``{"AE": ..., "UI": ...}``, each ``value -> (ok, reason)``) and ``CODECS``
  (codec names tried after ASCII) are what :mod:`dicomnet.utils` checks and decodes program
  values with (``set_ae``, ``set_uid``, ``decode_bytes``); a program may replace a validator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOG_HANDLER_LEVEL = "standard"
ENFORCE_UID_CONFORMANCE = False
USE_SHORT_DIMSE_AET = True
LOG_RESPONSE_IDENTIFIERS = True
LOG_REQUEST_IDENTIFIERS = True
STORE_SEND_CHUNKED_DATASET = False
STORE_RECV_CHUNKED_DATASET = False
DECODE_STORE_DATASETS = True
UNRESTRICTED_STORAGE_SERVICE = False
PASS_CONTEXTVARS = False
WINDOWS_TIMER_RESOLUTION: float | None = 1.0
#: codecs :func:`dicomnet.utils.decode_bytes` tries after ASCII for an AE title or UID
CODECS: tuple[str, ...] = ("ascii",)


def _check_ae(value: object) -> tuple[bool, str]:
    """PS3.5 Table 6.2-1 AE: at most 16 characters of the Default Character Repertoire, no
    backslash or control character, not only spaces."""
    if not isinstance(value, str):
        return False, "must be str"
    if len(value) > 16:
        return False, "must not exceed 16 characters"
    if not value.strip(" "):
        return False, "must not consist only of spaces"
    if any(c == "\\" or not " " <= c <= "~" for c in value):
        return False, "must not contain backslashes or control characters"
    return True, ""


def _check_ui(value: object) -> tuple[bool, str]:
    """PS3.5 Table 6.2-1 UI: at most 64 characters of digits and dots."""
    if not isinstance(value, str):
        return False, "must be str"
    if not value:
        return False, "must not be an empty str"
    if len(value) > 64:
        return False, "must not exceed 64 characters"
    if any(c not in "0123456789." for c in value):
        return False, "must only contain digits and '.'"
    return True, ""


#: the checks :func:`dicomnet.utils.set_ae` / ``set_uid`` apply, by VR: ``value -> (ok,
#: reason)``; a program may replace one
VALIDATORS: dict[str, Callable[[Any], tuple[bool, str]]] = {"AE": _check_ae, "UI": _check_ui}
