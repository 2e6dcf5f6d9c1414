"""Issue 11: the simulated host models what the Windows review's fixes change.

A ``.GroupPolicy`` copy beside ``.Default`` (only the named physical store loses its copy), an
access-denied store (an error, never "absent"), a partly stopped HTTP service (everything that
ran runs again, nothing is refreshed, the run fails) and a non-elevated account (every action
template stops before changing anything). The model follows docs/windows-facts.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sectigo_chain.errors import ApplyError
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.state.plan_models import CertBackup
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import render
from sectigo_chain.x509.certs import thumbprint


def _r46(host: SimulatedHost) -> Any:
    return host.lab.self_signed_root("RSA").cert


def _remove(host: SimulatedHost, physical: str | None, store: str = "Root") -> Any:
    return host.run(
        render(
            "remove_certificate",
            {
                "thumbprint": thumbprint(_r46(host)),
                "store_location": "LocalMachine",
                "store_name": store,
                "physical_store": physical,
            },
        )
    )


def _gpo_beside_default() -> SimulatedHost:
    host = SimulatedHost("broken-r46")
    r46 = _r46(host)
    assert host.model.discard(("LocalMachine", "Root", ".AuthRoot"), thumbprint(r46))
    host.model.add("LocalMachine", "Root", r46, ".Default")
    host.model.add("LocalMachine", "Root", r46, ".GroupPolicy")
    return host


def _physical(host: SimulatedHost, thumb: str) -> list[str]:
    return [key[2] for key, _ in host.model.copies(thumb, "LocalMachine", "Root")]


def test_removing_default_leaves_the_group_policy_copy() -> None:
    host = _gpo_beside_default()
    thumb = thumbprint(_r46(host))
    result = _remove(host, ".Default")
    assert result.ok
    assert result.data["removed"] is True
    assert result.data["still_present"] is True  # the .GroupPolicy copy still provides it
    backup = CertBackup.model_validate(result.data["backup"])
    assert backup.physical_store == ".Default"
    assert _physical(host, thumb) == [".GroupPolicy"]


def test_no_physical_store_named_and_several_copies_is_refused() -> None:
    host = _gpo_beside_default()
    before = host.snapshot()
    result = _remove(host, None)
    assert not result.ok
    assert result.error is not None
    assert result.error["category"] == "Refused"
    assert "2 physical store(s)" in result.error["message"]
    assert ".Default, .GroupPolicy" in result.error["message"]
    assert host.snapshot() == before


def test_the_one_physical_copy_is_found_and_backed_up_as_a_string() -> None:
    host = SimulatedHost("broken-r46")  # the self-signed R46 only in Root's .AuthRoot
    result = _remove(host, None)
    assert result.ok
    assert result.data["physical_store"] == ".AuthRoot"
    assert CertBackup.model_validate(result.data["backup"]).physical_store == ".AuthRoot"
    assert result.data["still_present"] is False


def test_move_backup_names_one_physical_store() -> None:
    host = SimulatedHost("misplaced")  # the R46 cross-sign also in LocalMachine\Root
    cross = thumbprint(host.lab.r46_cross)
    result = host.run(
        render(
            "move_certificate",
            {
                "thumbprint": cross,
                "from_location": "LocalMachine",
                "from_store": "Root",
                "to_location": "LocalMachine",
                "to_store": "CA",
                "remove_source": True,
            },
        )
    )
    assert result.ok
    assert isinstance(result.data["backup"]["physical_store"], str)
    assert CertBackup.model_validate(result.data["backup"]).physical_store == ".Default"


def _move_r46_out_of_root(host: SimulatedHost) -> Any:
    return host.run(
        render(
            "move_certificate",
            {
                "thumbprint": thumbprint(_r46(host)),
                "from_location": "LocalMachine",
                "from_store": "Root",
                "to_location": "LocalMachine",
                "to_store": "Disallowed",
                "remove_source": True,
            },
        )
    )


def test_move_with_the_source_in_several_physical_stores_is_refused_before_copying() -> None:
    host = _gpo_beside_default()
    before = host.snapshot()
    result = _move_r46_out_of_root(host)
    assert not result.ok
    assert result.error is not None
    assert result.error["category"] == "Refused"
    assert ".Default, .GroupPolicy" in result.error["message"]
    assert host.snapshot() == before


def test_move_out_of_a_policy_store_is_refused_before_copying() -> None:
    host = _gpo_beside_default()
    thumb = thumbprint(_r46(host))
    assert host.model.discard(("LocalMachine", "Root", ".Default"), thumb)
    before = host.snapshot()
    result = _move_r46_out_of_root(host)
    assert not result.ok
    assert result.error is not None
    assert "policy would put it back" in result.error["message"]
    assert host.snapshot() == before


def test_access_denied_is_an_error_not_absent() -> None:
    host = SimulatedHost("broken-r46")
    host.model.access_denied.add(("LocalMachine", "Root"))
    before = host.snapshot()
    for result in (
        _remove(host, ".AuthRoot"),
        _remove(host, None, store="AuthRoot"),
        host.run(
            render(
                "move_certificate",
                {
                    "thumbprint": thumbprint(_r46(host)),
                    "from_location": "LocalMachine",
                    "from_store": "Root",
                    "to_location": "LocalMachine",
                    "to_store": "Disallowed",
                    "remove_source": True,
                },
            )
        ),
    ):
        assert not result.ok
        assert result.error is not None
        assert result.error["category"] == "PermissionDenied"
        assert "Access is denied" in result.error["message"]
    assert host.snapshot() == before


def test_partly_stopped_http_service_is_started_again_and_reported() -> None:
    at = dt.datetime.now(dt.timezone.utc)
    host = SimulatedHost("stale-cache", clock=lambda: at)
    host.model.services["SSTPSvc"] = "Running"
    host.model.http_stop_blocked_by = "SSTPSvc"
    stale = [thumbprint(c) for c in host.served_chain("0.0.0.0:443")]
    result = host.run(render("restart", {"mode": "http_service", "app_pools": []}))
    assert not result.ok
    assert result.error is not None
    assert result.error["category"] == "NativeCommandFailed"
    assert "net stop http /y failed with exit code 2" in result.error["message"]
    assert set(host.model.services.values()) == {"Running"}  # W3SVC and WAS started again
    assert [thumbprint(c) for c in host.served_chain("0.0.0.0:443")] == stale
    host.model.http_stop_blocked_by = None
    assert host.run(render("restart", {"mode": "http_service", "app_pools": []})).ok
    assert [thumbprint(c) for c in host.served_chain("0.0.0.0:443")] != stale


ACTIONS: dict[str, dict[str, Any]] = {
    "set_root_auto_update": {"disabled": True},
    "restart": {"mode": "iisreset", "app_pools": []},
    "remove_binding": {"site": "Default Web Site", "ip": "*", "port": 443, "host": ""},
}


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_non_elevated_account_changes_nothing(name: str) -> None:
    host = SimulatedHost("broken-r46")
    host.model.elevated = False
    before = host.snapshot()
    assert host.run(render("observe", {})).ok  # reading still works
    result = host.run(render(name, ACTIONS[name]))
    assert not result.ok
    assert result.error is not None
    assert result.error["category"] == "PermissionDenied"
    assert "not running elevated" in result.error["message"]
    assert host.snapshot() == before


def test_non_elevated_apply_fails_with_the_reason(tmp_path: Any) -> None:
    at = dt.datetime.now(dt.timezone.utc)
    host = SimulatedHost("broken-r46", clock=lambda: at)
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog, root_strategy="remove")
    p = plan(desired, observe(host), catalog=host.catalog, at=at)
    host.model.elevated = False
    before = host.snapshot()
    with pytest.raises(ApplyError, match="not running elevated"):
        apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path, at=at)
    assert host.snapshot() == before
