"""Issue 17 (6): a Central Certificate Store PFX without its intermediates (win-acme #1347).

observe exposes what the CCS PFX holds (``inspect_ccs``), the plan says what it lacks and,
asked to (``rebuild_ccs``), rebuilds it with the full chain, the original copied beside it
first; rollback copies it back; a second apply is a no-op. On the ``ccs-pfx`` simulated host
(a real PFX, opened with its password by ``cryptography`` as the template opens it with .NET).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from sectigo_chain.cli.main import main
from sectigo_chain.errors import ApplyError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.hosts.sim.scenarios import CCS_LAB_PASSWORD, CCS_LOCATION
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.state.ccs import backup_path, ccs_file_names
from sectigo_chain.state.models import DesiredState
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.x509.certs import thumbprint

FAST = RetryPolicy(attempts=2, wait_initial=0)
FILE = "ccs.example.test.pfx"
PATH = f"{CCS_LOCATION}\\{FILE}"
PW = SecretStr(CCS_LAB_PASSWORD)


def _desired(host: SimulatedHost, *, rebuild: bool = True) -> DesiredState:
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    return desired.model_copy(update={"rebuild_ccs": rebuild, "ccs_password": PW})


def _pfx_thumbprints(raw: bytes) -> list[str]:
    _key, leaf, extra = pkcs12.load_key_and_certificates(raw, CCS_LAB_PASSWORD.encode())
    assert leaf is not None
    return [thumbprint(leaf), *(thumbprint(c) for c in extra)]


def _now(host: SimulatedHost) -> dt.datetime:
    return host.clock()


def test_observe_exposes_what_the_ccs_pfx_holds() -> None:
    host = SimulatedHost("ccs-pfx")
    raw = host.model.ccs_files[FILE]
    observed = observe(host, ccs_password=PW)
    assert host.calls == ["observe", "inspect_ccs"]
    assert observed.ccs is not None
    assert (observed.ccs.enabled, observed.ccs.location) == (True, CCS_LOCATION)
    f = observed.ccs.file(FILE)
    assert f is not None
    assert (f.present, f.path, f.error) == (True, PATH, None)
    assert f.sha256 == hashlib.sha256(raw).hexdigest().upper()
    assert [(c.thumbprint, c.has_private_key) for c in f.certificates] == [
        (_pfx_thumbprints(raw)[0], True)  # the certificate and its key only: no intermediate
    ]
    # without the password: presence and SHA-256 only, and why not more
    plain = observe(host)
    assert plain.ccs is not None
    g = plain.ccs.file(FILE)
    assert g is not None
    assert g.sha256 == f.sha256
    assert g.certificates == ()
    assert g.error is not None
    assert "password" in g.error


def test_a_host_without_a_ccs_binding_pays_no_extra_script() -> None:
    host = SimulatedHost("fixed")
    assert observe(host).ccs is None
    assert host.calls == ["observe"]


def test_ccs_file_names_include_the_wildcard_file() -> None:
    host = SimulatedHost("ccs-pfx")
    assert ccs_file_names(observe(host)) == [FILE, "_.example.test.pfx"]


def test_the_plan_says_what_the_pfx_lacks_and_offers_the_rebuild() -> None:
    host = SimulatedHost("ccs-pfx")
    p = plan(_desired(host, rebuild=False), observe(host, ccs_password=PW), at=_now(host),
             catalog=host.catalog)  # fmt: skip
    assert p.actions == ()
    (warning,) = [w for w in p.warnings if FILE in w]
    lab = host.lab
    wanted = [host.catalog.identify(c) for c in (lab.issuing_ca("RSA").cert, lab.r46_cross)]
    names = ", ".join(e.name for e in wanted if e is not None)
    assert f"{FILE} holds the certificate without {names} (win-acme #1347)" in warning
    assert "cross-signed by USERTrust RSA" in names
    assert "win-acme #1347" in warning
    assert "--rebuild-ccs" in warning
    # without the password the plan cannot look inside: it says so and what to give
    q = plan(_desired(host, rebuild=True).model_copy(update={"ccs_password": None}),
             observe(host), at=_now(host), catalog=host.catalog)  # fmt: skip
    assert q.actions == ()
    assert any("--ccs-password-env" in w for w in q.warnings)


def test_rebuild_adds_the_full_chain_keeps_the_original_and_a_second_apply_is_a_no_op(
    tmp_path: Path,
) -> None:
    host = SimulatedHost("ccs-pfx")
    lab = host.lab
    original = host.model.ccs_files[FILE]
    desired = _desired(host)
    at = _now(host)
    p = plan(desired, observe(host, ccs_password=PW), at=at, catalog=host.catalog)
    assert [a.kind for a in p.actions] == ["rebuild_ccs_pfx", "restart"]
    action = p.actions[0]
    assert action.params["path"] == PATH
    assert action.params["backup_path"] == backup_path(PATH, at)
    assert "password" not in action.params  # the secret travels only in secret_params
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST, at=at)  # fmt: skip
    assert result.after_plan_empty
    rebuilt = host.model.ccs_files[FILE]
    assert _pfx_thumbprints(rebuilt) == [
        _pfx_thumbprints(original)[0],
        thumbprint(lab.issuing_ca("RSA").cert),
        thumbprint(lab.r46_cross),
    ]
    backup_name = backup_path(PATH, at).rsplit("\\", 1)[1]
    assert host.model.ccs_files[backup_name] == original  # the original, byte for byte
    # no secret in the journal or the restore script; the restore script restores the file
    assert result.journal is not None
    assert result.restore_script is not None
    restore_text = Path(result.restore_script).read_text()
    assert "template restore_ccs_pfx" in restore_text  # the undo, in the hand-over script
    assert "Read-Host" not in restore_text  # it needs no password
    text = Path(result.journal).read_text() + restore_text
    assert CCS_LAB_PASSWORD not in text
    doc = json.loads(Path(result.journal).read_text())
    assert doc["steps"][0]["data"]["added"] == [thumbprint(lab.issuing_ca("RSA").cert),
                                                thumbprint(lab.r46_cross)]  # fmt: skip
    # a second plan finds nothing to do (the PFX is complete now)
    again = plan(desired, observe(host, ccs_password=PW), at=at, catalog=host.catalog)
    assert again.actions == ()
    assert not any(FILE in w for w in again.warnings)
    # rollback copies the original back (and the rollback's check compares the file)
    rb = rollback(result.journal, host, retry=FAST)
    assert rb.complete, rb.errors
    assert host.model.ccs_files[FILE] == original


def test_a_failure_after_the_rebuild_rolls_the_file_back(tmp_path: Path) -> None:
    host = SimulatedHost("ccs-pfx", faults=Faults(fail_action=1))  # the restart fails
    original = host.model.ccs_files[FILE]
    desired = _desired(host)
    at = _now(host)
    p = plan(desired, observe(host, ccs_password=PW), at=at, catalog=host.catalog)
    with pytest.raises(ApplyError) as caught:
        apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, retry=FAST,
              at=at)  # fmt: skip
    assert caught.value.rollback_complete
    assert host.model.ccs_files[FILE] == original
    assert CCS_LAB_PASSWORD not in str(caught.value)


def test_a_file_changed_since_the_plan_is_not_overwritten(tmp_path: Path) -> None:
    host = SimulatedHost("ccs-pfx")
    desired = _desired(host)
    at = _now(host)
    p = plan(desired, observe(host, ccs_password=PW), at=at, catalog=host.catalog)
    # someone renews the certificate on the share between plan and apply
    changed = host.lab.issue_leaf(["ccs.example.test"]).pfx(CCS_LAB_PASSWORD)
    host.model.ccs_files[FILE] = changed
    with pytest.raises(ApplyError) as caught:
        apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, retry=FAST,
              at=at)  # fmt: skip
    assert "changed since it was observed" in str(caught.value)
    assert host.model.ccs_files[FILE] == changed
    assert not any(".sectigo-backup-" in name for name in host.model.ccs_files)


def test_cli_plan_offers_and_plans_the_rebuild(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECTIGO_TEST_CCS_PW", CCS_LAB_PASSWORD)
    base = ["plan", "--target", "sim://ccs-pfx", "--no-served", "--ccs-password-env",
            "SECTIGO_TEST_CCS_PW"]  # fmt: skip
    main(base)
    out = capsys.readouterr().out
    assert "--rebuild-ccs" in out
    assert "rebuild_ccs_pfx" not in out
    main([*base, "--rebuild-ccs"])
    out = capsys.readouterr().out
    assert "[rebuild_ccs_pfx]" in out
    assert CCS_LAB_PASSWORD not in out


def _ccs_rows(host: SimulatedHost) -> list[tuple[str | None, int]]:
    """(verdict, served length) of every handshake against the CCS entry, over real TLS."""
    from sectigo_chain.run.entries import verify_entries

    with host.start_tls() as listener:
        report = verify_entries(host, "Default Web Site",
                                lambda p: listener.address_for(p.entry)[:2],
                                catalog=host.catalog, climb_ladder=False)  # fmt: skip
    return [(r.verdict, len(r.served)) for r in report.rows if r.probe.kind == "ccs"]


def test_a_farm_server_without_the_cross_sign_serves_the_full_chain_once_the_pfx_has_it(
    tmp_path: Path,
) -> None:
    from sectigo_chain.templates.render import render

    host = SimulatedHost("ccs-pfx")
    # this server has the cross-sign in its own CA store: its CCS entry serves the full chain
    assert _ccs_rows(host) == [("pass", 3), ("pass", 3)]  # TLS 1.2 and 1.3
    # another server of the farm reads the same share but lacks the cross-sign
    other = SimulatedHost("ccs-pfx")
    other.model.discard(("LocalMachine", "CA", ".Default"), thumbprint(other.lab.r46_cross))
    other.model.served_cache.clear()
    assert _ccs_rows(other) == [("fail", 2), ("fail", 2)]  # leaf and R36 only
    # the rebuild on the first server writes the full chain into the shared PFX
    desired = _desired(host)
    p = plan(desired, observe(host, ccs_password=PW), at=_now(host), catalog=host.catalog)
    apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, retry=FAST)
    other.model.ccs_files = dict(host.model.ccs_files)  # one share for the farm
    assert other.run(render("restart", {"mode": "iisreset"})).ok
    assert _ccs_rows(other) == [("pass", 3), ("pass", 3)]  # the cross-sign now from the PFX
