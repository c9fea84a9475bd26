"""Small behaviours a pynetdicom program sees, each checked against pynetdicom itself:
AE title validation, ``Status.add``, and a library that stays quiet on stderr when the
program configured no logging."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dicomnet.ae import AE
from dicomnet.status import Status


def _title(ae_class: Any, value: object) -> str:
    try:
        ae = ae_class()
        ae.ae_title = value
        return repr(ae.ae_title)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("value", ["NL\n", "TAB\t", None, 123, "A" * 17, "", "\\X", "OK"])
def test_ae_title_validation_as_pynetdicoms(value: object) -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    assert _title(AE, value) == _title(pynetdicom.AE, value)


def test_status_add() -> None:
    Status.add("MY_UNABLE_TO_PROCESS", 0xC0DE)
    assert Status.MY_UNABLE_TO_PROCESS == 0xC0DE  # type: ignore[attr-defined]
    assert Status.SUCCESS == 0 and Status.PENDING == 0xFF00


QUIET = """
import time
from dicomnet import AE, evt
scp = AE("SCP")
scp.add_supported_context("1.2.840.10008.1.1")
server = scp.start_server(("127.0.0.1", 0), block=False,
                          evt_handlers=[(evt.EVT_C_ECHO, lambda e: time.sleep(1.5) or 0)])
ae = AE()
ae.dimse_timeout = 0.3
ae.add_requested_context("1.2.840.10008.1.1")
assoc = ae.associate("127.0.0.1", server.server_address[1])
status = assoc.send_c_echo()  # no answer in time: a WARNING record, then an abort
print("established", assoc.is_established, "status", len(status))
server.shutdown()
"""


def test_nothing_on_stderr_without_logging_configured() -> None:
    out = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.stdout.strip() == "established False status 0"
    assert out.stderr == ""


def test_acceptors_user_identity_response_is_where_pynetdicom_has_it() -> None:
    """A requestor reads the acceptor's User Identity response as
    ``assoc.acceptor.user_identity.server_response`` (PS3.7 D.3.3.7.2), against a real
    pynetdicom SCP whose EVT_USER_ID handler answers a Kerberos-type request."""
    pynetdicom = pytest.importorskip("pynetdicom")
    from dicomnet.pdu_primitives import UserIdentityNegotiation

    scp = pynetdicom.AE()
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False, evt_handlers=[
        (pynetdicom.evt.EVT_USER_ID, lambda event: (True, b"ticket"))])  # fmt: skip
    try:
        item = UserIdentityNegotiation()
        item.user_identity_type = 3
        item.primary_field = b"kerberos-ticket"
        item.positive_response_requested = True
        ae = AE()
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", server.server_address[1], ext_neg=[item])
        assert assoc.is_established
        assert assoc.acceptor.user_identity.server_response == b"ticket"
        assoc.release()
    finally:
        server.shutdown()


def test_an_unusable_tls_context_fails_the_association_not_the_program() -> None:
    """pynetdicom's guide passes ``Purpose.CLIENT_AUTH`` contexts around; a server-side context
    given to a requestor makes the association fail (not established, the reason kept), as
    pynetdicom's does, instead of raising ssl.SSLError out of ``associate()``."""
    import ssl

    pynetdicom = pytest.importorskip("pynetdicom")
    scp = AE()
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # a server's context
        for ae_class in (pynetdicom.AE, AE):
            ae = ae_class()
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", server.server_address[1], tls_args=(context, None))
            assert not assoc.is_established
        assert "TLS" in str(assoc.failure_reason)
    finally:
        server.shutdown()


def test_an_empty_uid_is_not_valid() -> None:
    pytest.importorskip("pynetdicom")
    from pydicom.uid import UID
    from pynetdicom.utils import validate_uid as theirs

    from dicomnet.utils import validate_uid as ours

    assert ours(UID("")) is theirs(UID("")) is False
    assert ours(UID("1.2.3")) is theirs(UID("1.2.3")) is True


def test_build_role_gives_pynetdicoms_item() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    from dicomnet.presentation import build_role

    ct = "1.2.840.10008.5.1.4.1.1.2"
    for made in (pynetdicom.build_role(ct, scp_role=True), build_role(ct, scp_role=True)):
        assert (made.sop_class_uid, made.scu_role, made.scp_role) == (ct, False, True)
        made.scu_role = True  # editable until sent
        assert made.scu_role is True


def test_timeouts_set_on_the_ae_reach_its_live_associations() -> None:
    """pynetdicom passes a new ACSE/DIMSE/network timeout on to the AE's associations; so
    does dicomnet: a DIMSE timeout lowered after associating ends the wait for a slow peer."""
    import time

    pynetdicom = pytest.importorskip("pynetdicom")
    from dicomnet import evt

    scp = AE("SCP")
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False,
                              evt_handlers=[(evt.EVT_C_ECHO, lambda e: time.sleep(3) or 0)])  # fmt: skip
    try:
        for ae_class in (pynetdicom.AE, AE):
            ae = ae_class()
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", server.server_address[1])
            assert assoc.dimse_timeout == 30
            ae.dimse_timeout = 0.5
            ae.acse_timeout = 7
            ae.connection_timeout = 4
            assert (assoc.dimse_timeout, assoc.acse_timeout) == (0.5, 7), ae_class
            assert assoc.connection_timeout == 4, ae_class
            start = time.monotonic()
            status = assoc.send_c_echo()
            assert len(status) == 0 and time.monotonic() - start < 2.5, ae_class
            if assoc.is_established:
                assoc.abort()
    finally:
        server.shutdown()


def _attr(ae_class: Any, name: str, value: object) -> str:
    import warnings

    try:
        ae = ae_class()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pynetdicom warns on bytes values
            setattr(ae, name, value)
        return repr(getattr(ae, name))
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize(("name", "value"), [
    ("implementation_class_uid", b"1.2.3"), ("implementation_class_uid", 1234),
    ("implementation_class_uid", ""), ("implementation_class_uid", "1.2.a"),
    ("implementation_version_name", "A" * 17), ("implementation_version_name", ""),
    ("implementation_version_name", None), ("implementation_version_name", "OK_1"),
    ("require_calling_aet", [b"SCUAE", "OTHER"]), ("maximum_associations", -10),
    ("maximum_associations", 5),
])  # fmt: skip
def test_ae_attributes_are_checked_when_set_as_pynetdicoms(name: str, value: object) -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    assert _attr(AE, name, value) == _attr(pynetdicom.AE, name, value)


def test_associate_argument_errors_are_pynetdicoms() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    for ae_class in (pynetdicom.AE, AE):
        ae = ae_class()
        with pytest.raises(RuntimeError):  # nothing to propose
            ae.associate("127.0.0.1", 104)
        ae.add_requested_context("1.2.840.10008.1.1")
        with pytest.raises(TypeError):
            ae.associate(1112, 104)
    for ae_class in (pynetdicom.AE, AE):
        ae = ae_class()  # the arguments are checked before the contexts
        for addr in (("127.0.0.1", "x", 0), ("127.0.0.1", 0, "x"), (12, 0, 0)):
            with pytest.raises(TypeError):
                ae.associate(addr, 104)
        for bind in (12, (12,), ("127.0.0.1",)):
            with pytest.raises(TypeError):
                ae.associate("127.0.0.1", 104, bind_address=bind)


def test_printing_an_ae_shows_what_pynetdicoms_shows() -> None:
    """``print(ae)``: the contexts with their syntaxes, timeouts, the AE title checks and the
    associations, as pynetdicom's summary has them (the layout is ours)."""
    pynetdicom = pytest.importorskip("pynetdicom")
    for ae_class in (pynetdicom.AE, AE):
        ae = ae_class()
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.require_calling_aet = ["SOMEONE"]
        ae.require_called_aet = True
        text = str(ae)
        for part in ("Explicit VR Little Endian", "Verification SOP Class", "0/10", "SOMEONE",
                     "ACSE timeout: 30 s", "Require called AE title: True"):
            assert part in text, (ae_class, part)


def test_event_kinds_are_built_and_checked_as_in_pynetdicom() -> None:
    pynetdicom = pytest.importorskip("pynetdicom")
    from dicomnet import evt

    for module in (pynetdicom.evt, evt):
        mine = module.InterventionEvent("EVT_MINE", "my event")
        note = module.NotificationEvent("EVT_NOTE", "my notification")
        assert (mine.is_intervention, note.is_notification) == (True, True), module.__name__
        assert isinstance(module.EVT_C_STORE, module.InterventionEvent)
        assert isinstance(module.EVT_ABORTED, module.NotificationEvent)
        assert not isinstance(module.EVT_ABORTED, module.InterventionEvent)


def test_a_server_knows_its_ae_title() -> None:
    scp = AE("MAIN")
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False, ae_title="OTHER")
    try:
        assert (server.ae_title, scp.ae_title) == ("OTHER", "MAIN")
    finally:
        server.shutdown()


def test_a_missing_context_is_named_by_its_sop_class() -> None:
    """The error for a SOP class the peer accepted no context for names it, as pynetdicom's
    does ("... for 'CT Image Storage' ..."), with its UID; an unknown UID is shown alone."""
    from dicomnet.errors import NoPresentationContextError

    scp = AE()
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        ae = AE()
        ae.add_requested_context("1.2.840.10008.1.1")
        assoc = ae.associate("127.0.0.1", server.server_address[1])
        with pytest.raises(NoPresentationContextError, match=r"CT Image Storage \(1\.2\.840\.10008"
                                                             r"\.5\.1\.4\.1\.1\.2\) in the SCU role"):
            assoc.find_context("1.2.840.10008.5.1.4.1.1.2")
        with pytest.raises(NoPresentationContextError, match=r"for 1\.2\.3\.4 in the SCU role"):
            assoc.find_context("1.2.3.4")
        assoc.release()
    finally:
        server.shutdown()
