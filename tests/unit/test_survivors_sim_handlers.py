"""The simulated host's handlers, branch by branch (issue 20: disallow_certificate,
remove_binding, recycle and import_pfx error branches were never run). Each test goes through
the template contract: render a template, run it on a SimulatedHost, read the ScriptResult."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from sectigo_chain.hosts.base import ScriptResult
from sectigo_chain.hosts.sim.handlers import HANDLERS, Refused
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.templates.render import render
from sectigo_chain.x509.certs import thumbprint

PW = "pfx-pw"


def _run(host: SimulatedHost, template: str, params: dict[str, Any]) -> ScriptResult:
    return host.run(render(template, params))


def _der(cert: Any) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def _refused_directly(host: SimulatedHost, template: str, params: dict[str, Any]) -> Refused:
    """Run a handler with parameters its template would not even render (what a hand-edited
    standalone script could send): the handler refuses them itself."""
    try:
        HANDLERS[template](host, params)
    except Refused as exc:
        return exc
    raise AssertionError(f"{template} accepted {params}")


def _refused(result: ScriptResult, category: str, text: str) -> None:
    assert not result.ok
    assert not result.changed
    assert result.error is not None
    assert result.error["category"] == category
    assert text in result.error["message"]
    assert result.errors == [result.error["message"]]


# --- disallow_certificate ---------------------------------------------------------------------


def test_disallow_adds_once_then_reports_already_present() -> None:
    host = SimulatedHost("broken-r46")
    root = host.lab.r46_root.cert
    params = {"der_b64": _der(root), "thumbprint": thumbprint(root)}
    first = _run(host, "disallow_certificate", params)
    assert (first.ok, first.changed) == (True, True)
    assert first.data == {"thumbprint": thumbprint(root), "already_present": False}
    assert host.model.copies(thumbprint(root), "LocalMachine", "Disallowed")
    again = _run(host, "disallow_certificate", params)
    assert (again.ok, again.changed, again.data["already_present"]) == (True, False, True)


def test_disallow_refuses_a_thumbprint_that_is_not_the_certificates() -> None:
    host = SimulatedHost("broken-r46")
    params = {"der_b64": _der(host.lab.r46_root.cert), "thumbprint": "AB" * 20}
    exc = _refused_directly(host, "disallow_certificate", params)
    assert (exc.category, exc.message) == ("InvalidArgument", "thumbprint does not match der_b64")
    assert not host.model.copies("AB" * 20)
    assert not host.model.logical("LocalMachine", "Disallowed")


# --- remove_binding ---------------------------------------------------------------------------


def test_remove_binding_removes_the_https_binding_and_its_sslcert() -> None:
    host = SimulatedHost("broken-r46")
    key = {"site": "Default Web Site", "ip": "*", "port": 443, "host": ""}
    assert host.model.sslcert
    result = _run(host, "remove_binding", key)
    assert (result.ok, result.changed, result.data["removed"]) == (True, True, True)
    assert result.data["previous"]["port"] == 443
    site = host.model.sites["Default Web Site"]
    assert [b.protocol for b in site.bindings] == ["http"]
    assert not host.model.sslcert  # the endpoint no binding uses is gone
    again = _run(host, "remove_binding", key)
    assert (again.ok, again.changed, again.data) == (
        True,
        False,
        {"removed": False, "previous": None},
    )


def test_remove_binding_on_an_unknown_site_is_refused() -> None:
    host = SimulatedHost("broken-r46")
    result = _run(host, "remove_binding", {"site": "Nope", "ip": "*", "port": 443, "host": ""})
    _refused(result, "ObjectNotFound", "Cannot find site 'Nope'.")


# --- restart ----------------------------------------------------------------------------------


def test_recycle_counts_each_pool_and_refuses_an_unknown_one() -> None:
    host = SimulatedHost("broken-r46")
    pool = next(iter(host.model.app_pools))
    result = _run(host, "restart", {"mode": "recycle", "app_pools": [pool]})
    assert (result.ok, result.changed) == (True, True)
    assert result.data == {"mode": "recycle", "exit_code": None, "recycled": [pool]}
    assert host.model.recycle_count == {pool: 1}
    _run(host, "restart", {"mode": "recycle", "app_pools": [pool]})
    assert host.model.recycle_count == {pool: 2}
    bad = _run(host, "restart", {"mode": "recycle", "app_pools": ["Ghost"]})
    _refused(bad, "ObjectNotFound", "Cannot find application pool 'Ghost'.")
    assert host.model.iisreset_count == 0


def test_iisreset_and_http_service_restart() -> None:
    host = SimulatedHost("broken-r46")
    reset = _run(host, "restart", {"mode": "iisreset"})
    assert reset.data == {"mode": "iisreset", "exit_code": 0, "recycled": []}
    assert host.model.iisreset_count == 1
    http = _run(host, "restart", {"mode": "http_service"})
    assert http.data == {"mode": "http_service", "exit_code": None, "recycled": []}
    assert host.model.iisreset_count == 1


# --- import_pfx -------------------------------------------------------------------------------


def _pfx_params(host: SimulatedHost, *, legacy: bool = True, **extra: Any) -> dict[str, Any]:
    leaf = host.lab.issue_leaf(["pfx.example.test"])
    params = {
        "pfx_b64": base64.b64encode(leaf.pfx(PW, legacy=legacy)).decode(),
        "password": PW,
        "thumbprint": thumbprint(leaf.cert),
        "store_name": "My",
    }
    params.update(extra)
    return params


def test_import_pfx_installs_with_a_machine_key_once() -> None:
    host = SimulatedHost("broken-r46")
    params = _pfx_params(host, friendly_name="shop", exportable=True)
    first = _run(host, "import_pfx", params)
    assert (first.ok, first.changed, first.data["already_present"]) == (True, True, False)
    ((_, sc),) = host.model.copies(params["thumbprint"], "LocalMachine", "My")
    assert (sc.key_storage, sc.key_exportable, sc.friendly_name) == ("machine", True, "shop")
    again = _run(host, "import_pfx", params)
    assert (again.ok, again.changed, again.data["already_present"]) == (True, False, True)


def test_import_pfx_with_a_wrong_password_is_refused() -> None:
    host = SimulatedHost("broken-r46")
    params = {**_pfx_params(host), "password": "wrong"}
    _refused(_run(host, "import_pfx", params), "CryptographicException", "0x80070056")


def test_import_pfx_of_an_aes_file_on_an_old_build_is_refused() -> None:
    host = SimulatedHost("broken-r46")
    host.model.os_build = 14393
    _refused(
        _run(host, "import_pfx", _pfx_params(host, legacy=False)),
        "CryptographicException",
        "The specified network password is not correct.",
    )
    legacy = _run(host, "import_pfx", _pfx_params(host, legacy=True))
    assert (legacy.ok, legacy.changed) == (True, True)
    host.model.os_build = 16299
    assert _run(host, "import_pfx", _pfx_params(host, legacy=False)).ok


def test_import_pfx_for_another_thumbprint_is_refused() -> None:
    host = SimulatedHost("broken-r46")
    params = {**_pfx_params(host), "thumbprint": "CD" * 20}
    _refused(_run(host, "import_pfx", params), "InvalidData", "not " + "CD" * 20)


def test_import_pfx_without_a_key_is_refused() -> None:
    host = SimulatedHost("broken-r46")
    leaf = host.lab.issue_leaf(["nokey.example.test"])
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption

    only_cert = pkcs12.serialize_key_and_certificates(
        None, None, leaf.cert, None, BestAvailableEncryption(PW.encode())
    )
    params = {
        "pfx_b64": base64.b64encode(only_cert).decode(),
        "password": PW,
        "thumbprint": thumbprint(leaf.cert),
        "store_name": "My",
    }
    _refused(_run(host, "import_pfx", params), "InvalidData", "no certificate with its private key")


# --- the other handlers' refusals and no-ops ---------------------------------------------------


def test_remove_certificate_refuses_a_group_policy_copy_and_ignores_an_absent_one() -> None:
    host = SimulatedHost("broken-r46")
    root = host.lab.r46_root.cert
    host.model.add("LocalMachine", "Root", root, ".GroupPolicy")
    params = {
        "thumbprint": thumbprint(root),
        "store_location": "LocalMachine",
        "store_name": "Root",
    }
    # issue 11: a policy copy is refused (category Refused), naming the physical store
    _refused(_run(host, "remove_certificate", params), "Refused", ".GroupPolicy")
    absent = {**params, "physical_store": ".Default"}  # the root is in .AuthRoot, not here
    result = _run(host, "remove_certificate", absent)
    assert (result.ok, result.changed) == (True, False)
    assert (result.data["removed"], result.data["backup"]) == (False, None)
    assert result.data["still_present"] is True  # the other physical stores still hold it


def test_move_certificate_not_found_and_copy_without_removing() -> None:
    host = SimulatedHost("broken-r46")
    ghost = {"thumbprint": "EF" * 20, "from_location": "LocalMachine", "from_store": "My",
             "to_location": "LocalMachine", "to_store": "CA", "remove_source": True}  # fmt: skip
    _refused(_run(host, "move_certificate", ghost), "InvalidOperation", "not found")
    cross = host.lab.r46_cross
    host.model.add("CurrentUser", "CA", cross)
    keep = {"thumbprint": thumbprint(cross), "from_location": "CurrentUser", "from_store": "CA",
            "to_location": "LocalMachine", "to_store": "CA", "remove_source": False}  # fmt: skip
    result = _run(host, "move_certificate", keep)
    assert result.data["copied"]
    assert not result.data["removed_source"]
    assert host.model.copies(thumbprint(cross), "CurrentUser", "CA")
    assert host.model.copies(thumbprint(cross), "LocalMachine", "CA")


def test_set_binding_needs_a_machine_key_and_verify_chain_a_certificate() -> None:
    host = SimulatedHost("broken-r46")
    cross = host.lab.r46_cross
    host.model.add("LocalMachine", "My", cross)  # no private key
    params = {"site": "Default Web Site", "thumbprint": thumbprint(cross)}
    _refused(_run(host, "set_binding", params), "InvalidOperation", "has no machine private key")
    missing = {"thumbprint": "12" * 20, "store_location": "LocalMachine", "store_name": "My"}
    _refused(_run(host, "verify_chain", missing), "ObjectNotFound", "not found")


def test_import_certificate_into_authroot_lands_in_roots_authroot_store() -> None:
    host = SimulatedHost("broken-r46")
    cert = host.lab.usertrust_rsa.cert
    tp = thumbprint(cert)
    for key, _ in host.model.copies(tp):
        host.model.discard(key, tp)
    # The rollback's restore path names AuthRoot (import_certificate's model does not accept it,
    # so the handler is called as the host would run it).
    params = {"der_b64": _der(cert), "thumbprint": tp, "store_name": "AuthRoot"}
    ok, changed, data, error = HANDLERS["import_certificate"](host, params)
    assert (ok, changed, error) == (True, True, None)
    assert data == {"thumbprint": tp, "store_location": "LocalMachine", "store_name": "AuthRoot",
                    "already_present": False}  # fmt: skip
    assert [k for k, _ in host.model.copies(tp)] == [("LocalMachine", "Root", ".AuthRoot")]
    again = HANDLERS["import_certificate"](host, params)
    assert again[1] is False


# --- branches the full suite did not run (branch coverage of handlers.py, issue 20) -----------


def test_a_store_whose_opening_is_denied_is_an_error_not_absent() -> None:
    host = SimulatedHost("broken-r46")
    root = host.lab.r46_root.cert
    host.model.access_denied.add(("LocalMachine", "Root"))
    result = _run(
        host,
        "remove_certificate",
        {"thumbprint": thumbprint(root), "store_name": "Root", "physical_store": ".Default"},
    )
    assert not result.ok
    assert result.error is not None
    assert '"Access is denied." (LocalMachine\\Root, 0x80070005)' in result.error["message"]
    assert host.model.copies(thumbprint(root), "LocalMachine", "Root")  # nothing removed


def test_without_a_physical_store_the_one_that_holds_the_copy_is_used() -> None:
    host = SimulatedHost("broken-r46")
    root = host.lab.r46_root.cert
    tp = thumbprint(root)
    held = {k[2] for k, _ in host.model.copies(tp, "LocalMachine", "Root")}
    assert len(held) == 1  # the scenario holds it in one physical store only
    result = _run(host, "remove_certificate", {"thumbprint": tp, "store_name": "Root"})
    assert (result.ok, result.changed) == (True, True)
    assert result.data["physical_store"] == held.pop()
    assert not host.model.copies(tp, "LocalMachine", "Root")


def test_a_copy_in_a_policy_physical_store_is_not_removed() -> None:
    host = SimulatedHost("broken-r46")
    root = host.lab.r46_root.cert
    tp = thumbprint(root)
    for key, _ in host.model.copies(tp, "LocalMachine", "Root"):
        del host.model.stores[key][tp]
    host.model.add("LocalMachine", "Root", root, ".GroupPolicy")
    # the template only names .Default/.AuthRoot; a hand-edited script could name another
    exc = _refused_directly(
        host,
        "remove_certificate",
        {"thumbprint": tp, "store_location": "LocalMachine", "store_name": "Root"},
    )
    assert exc.message.startswith("refusing to remove from physical store .GroupPolicy: policy")
    assert host.model.copies(tp, "LocalMachine", "Root")


def test_an_http_service_that_will_not_stop_fails_the_restart_and_restarts_the_rest() -> None:
    host = SimulatedHost("broken-r46")
    host.model.services["SSTPSVC"] = "Running"  # depends on HTTP and refuses to stop
    host.model.http_stop_blocked_by = "SSTPSVC"
    running = {n for n, s in host.model.services.items() if s == "Running"}
    result = _run(host, "restart", {"mode": "http_service"})
    assert not result.ok
    assert result.error is not None
    assert result.error["message"] == (
        "net stop http /y failed with exit code 2: The service could not be controlled in its "
        "present state (SSTPSVC)."
    )
    # the template's finally block started again what it had stopped
    assert {n for n, s in host.model.services.items() if s == "Running"} >= running
