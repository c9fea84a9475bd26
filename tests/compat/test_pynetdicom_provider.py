"""pynetdicom's own tests/test_dimse_provider.py, run against dicomnet's DIMSE provider with
nothing but an import shim (tests/compat/pynetdicom_shim.py).

The test module is read from the installed pynetdicom at test time (this module is skipped
without it); only its import lines are rewritten. Every test runs, except those listed in
:data:`PYNETDICOM_INTERNALS`: they check pynetdicom's internals (its DUL's state-machine event
queue, the wording of its log messages) rather than documented behaviour, and are skipped with
their reason, a user-facing one-liner also given in docs/migrating-from-pynetdicom.md. A test
about documented behaviour that fails is a dicomnet bug and stays enabled.
"""

from __future__ import annotations

import pytest

from tests.compat.pynetdicom_shim import load_pynetdicom_tests, pynetdicom_tests_dir

if pynetdicom_tests_dir() is None:
    pytest.skip("pynetdicom (with its tests) is not installed", allow_module_level=True)

_HANDLER_LOG = (
    "checks the wording of pynetdicom's log message for an event handler that raised "
    "(\"Exception raised in user's 'evt.EVT_...' event handler 'handle'\"); dicomnet also "
    'catches and logs the exception with its traceback, as "EVT_... handler failed"'
)

#: "Class::test" -> why it tests pynetdicom's internals rather than documented behaviour.
PYNETDICOM_INTERNALS: dict[str, str] = {
    "TestDIMSEProvider::test_invalid_message": (
        "checks that pynetdicom puts its internal state-machine event 'Evt19' on its DUL's "
        "event queue; dicomnet's receive_primitive raises ProtocolError (A-ABORT source 2, "
        "reason 6) instead, and the association is aborted all the same"
    ),
    "TestEventHandlingAcceptor::test_dimse_sent_raises": _HANDLER_LOG,
    "TestEventHandlingAcceptor::test_dimse_recv_raises": _HANDLER_LOG,
    "TestEventHandlingRequestor::test_dimse_sent_raises": _HANDLER_LOG,
    "TestEventHandlingRequestor::test_dimse_recv_raises": _HANDLER_LOG,
}

_module = load_pynetdicom_tests("test_dimse_provider")

_classes = {name: obj for name, obj in vars(_module).items()
            if name.startswith("Test") and isinstance(obj, type)}  # fmt: skip
for _key, _reason in PYNETDICOM_INTERNALS.items():
    _cls_name, _test_name = _key.split("::")
    _test = getattr(_classes[_cls_name], _test_name)  # KeyError/AttributeError: a stale entry
    setattr(_classes[_cls_name], _test_name,
            pytest.mark.skip(reason=f"pynetdicom internals: {_reason}")(_test))  # fmt: skip

globals().update(_classes)
