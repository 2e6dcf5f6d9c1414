"""Template handlers of the simulated host: one function per template (see ``host.py``).

Each takes the host and the decoded payload and returns ``(ok, changed, data, error)`` exactly
as the PowerShell template's JSON document would carry them. A MODEL of Windows behaviour
built from public documentation, not Windows.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from sectigo_chain.hosts.sim.model import (
    REMOVABLE_PHYSICAL,
    CacheEvent,
    HostModel,
    SimBinding,
    SimCert,
    SimSite,
    SslCertEntry,
)
from sectigo_chain.x509.certs import key_matches, thumbprint
from sectigo_chain.x509.pfx import read_pfx_protection

__all__ = ["HANDLERS", "Doc", "Refused"]

Doc = tuple[bool, bool, Any, "dict[str, str] | None"]
_DER = Encoding.DER


class Refused(Exception):
    def __init__(self, message: str, category: str = "InvalidOperation") -> None:
        self.message = message
        self.category = category
        super().__init__(message)


class HandlerHost(Protocol):
    """What a handler needs of the simulated host (``SimulatedHost`` is one): the model, the
    clock and the served-cache rule. Typing against this keeps handlers below ``host``."""

    model: HostModel
    clock: Callable[[], dt.datetime]
    served_cache_refresh: CacheEvent


def _cert_doc(key: tuple[str, str, str], sc: SimCert) -> dict[str, Any]:
    return {
        "der_b64": sc.der_b64,
        "thumbprint": sc.thumbprint,
        "store_location": key[0],
        "store_name": key[1],
        "physical_store": key[2],
        "friendly_name": sc.friendly_name,
        "has_private_key": sc.key is not None,
    }


def _binding(
    model: HostModel, site: str, ip: str, port: int, host: str
) -> tuple[SimSite, SimBinding | None]:
    s = model.sites.get(site)
    if s is None:
        raise Refused(f"Cannot find site '{site}'.", "ObjectNotFound")
    for b in s.bindings:  # host headers compare case-insensitively, as IIS (-eq) does
        if b.protocol == "https" and (b.ip, b.port, b.host.lower()) == (ip, port, host.lower()):
            return s, b
    return s, None


# ---------------------------------------------------------------------- template handlers


def _observe(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    return True, False, h.model.observe_document(bool(p.get("include_current_user", True))), None


def _load_der(p: Mapping[str, Any]) -> x509.Certificate:
    cert = x509.load_der_x509_certificate(base64.b64decode(p["der_b64"]))
    if thumbprint(cert) != str(p["thumbprint"]).upper():
        raise Refused("thumbprint does not match der_b64", "InvalidArgument")
    return cert


def _import_certificate(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    cert = _load_der(p)
    loc, store = p.get("store_location", "LocalMachine"), p["store_name"]
    _check_access(h.model, loc, store)
    physical = p.get("physical_store") or ".Default"
    if store == "AuthRoot":
        store, physical = "Root", ".AuthRoot"
    tp = thumbprint(cert)
    present = any(k[2] == physical for k, _ in h.model.copies(tp, loc, store))
    if not present:
        h.model.add(loc, store, cert, physical, friendly_name=p.get("friendly_name") or "")
    data = {"thumbprint": tp, "store_location": loc, "store_name": p["store_name"]}
    return True, not present, {**data, "already_present": present}, None


def _check_access(model: HostModel, location: str, store: str) -> None:
    """A store whose opening is denied (0x80070005) is an error, never "absent"."""
    if (location, "Root" if store == "AuthRoot" else store) in model.access_denied:
        raise Refused(
            f'Exception calling "Open" with "1" argument(s): "Access is denied." '
            f"({location}\\{store}, 0x80070005)",
            "PermissionDenied",
        )


def _remove_certificate(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    # Only the named physical store loses its copy (the template deletes that registry key);
    # with no physical store named, the copy must be in exactly one (issue 11, defect 3).
    tp = str(p["thumbprint"]).upper()
    loc, store, phys = p["store_location"], p["store_name"], p.get("physical_store")
    _check_access(h.model, loc, store)
    copies = h.model.copies(tp, loc, store)
    # A machine certificate seen through CurrentUser's Root/CA/Disallowed (.LocalMachine) is
    # in none of the user's physical stores: the template finds no copy and removes nothing
    # (issue 11 defect 3, issue 19 bug 6; docs/windows-facts.md).
    data: dict[str, Any] = {
        "thumbprint": tp,
        "store_location": loc,
        "store_name": store,
        "physical_store": phys,
        "removed": False,
        "backup": None,
        "still_present": bool(copies),
    }
    if not copies:
        return True, False, data, None
    if phys is None:
        held = sorted({k[2] for k, _ in copies})
        if len(held) > 1:
            raise Refused(
                f"{tp} is in {len(held)} physical store(s) of {loc}\\{store} "
                f"({', '.join(held)}): name the one to remove (physical_store); removing from "
                "the logical store could delete a copy that must stay",
                "Refused",
            )
        phys = data["physical_store"] = held[0]
    mine = [(k, c) for k, c in copies if k[2] == phys]
    if not mine:
        return True, False, data, None
    if phys not in REMOVABLE_PHYSICAL:
        raise Refused(
            f"refusing to remove from physical store {phys}: policy would put it back; change "
            "the policy instead",
            "Refused",
        )
    data["backup"] = _cert_doc(*mine[0])
    for k, _ in mine:
        h.model.discard(k, tp)
    data["removed"] = True
    data["still_present"] = bool(h.model.copies(tp, loc, store))
    return True, True, data, None


def _disallow_certificate(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    cert = _load_der(p)
    tp = thumbprint(cert)
    present = bool(h.model.copies(tp, "LocalMachine", "Disallowed"))
    if not present:
        h.model.add("LocalMachine", "Disallowed", cert)
    return True, not present, {"thumbprint": tp, "already_present": present}, None


def _import_pfx(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    raw = base64.b64decode(p["pfx_b64"])
    if h.model.os_build < 16299 and not read_pfx_protection(raw).legacy_compatible:
        # What Windows reports for an AES/PBES2 PFX before build 1709 (misleading, but real).
        raise Refused(
            "The specified network password is not correct. (0x80070056)", "CryptographicException"
        )
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(raw, str(p["password"]).encode())
    except ValueError:
        raise Refused(
            "The specified network password is not correct. (0x80070056)", "CryptographicException"
        ) from None
    if cert is None or key is None or not key_matches(key, cert):  # type: ignore[arg-type]
        raise Refused("the PFX holds no certificate with its private key", "InvalidData")
    tp = thumbprint(cert)
    if tp != str(p["thumbprint"]).upper():
        raise Refused(f"the PFX holds {tp}, not {p['thumbprint']}", "InvalidData")
    store = p.get("store_name", "My")
    present = [c for _, c in h.model.copies(tp, "LocalMachine", store) if c.key is not None]
    if not present:
        h.model.add(
            "LocalMachine",
            store,
            cert,
            friendly_name=p.get("friendly_name") or "",
            key=key,
            key_storage="machine",
            key_exportable=bool(p.get("exportable", False)),
        )
    data = {"thumbprint": tp, "already_present": bool(present), "has_private_key": True}
    return True, not present, data, None


def _move_certificate(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    tp = str(p["thumbprint"]).upper()
    _check_access(h.model, p["from_location"], p["from_store"])
    _check_access(h.model, p["to_location"], p["to_store"])
    src = h.model.copies(tp, p["from_location"], p["from_store"])
    dst = h.model.copies(tp, p["to_location"], p["to_store"])
    if not src and not dst:
        raise Refused(f"certificate {tp} not found in {p['from_location']}\\{p['from_store']}")
    # The source copy is removed from the one physical store holding it, decided before
    # anything changes, as remove_certificate does (never X509Store.Remove on the logical store).
    held = sorted({k[2] for k, _ in src})
    if p.get("remove_source", True) and len(held) > 1:
        raise Refused(
            f"{tp} is in {len(held)} physical store(s) of {p['from_location']}\\"
            f"{p['from_store']} ({', '.join(held)}): remove the extra copies first; removing "
            "from the logical store could delete a copy that must stay",
            "Refused",
        )
    if p.get("remove_source", True) and held and held[0] not in REMOVABLE_PHYSICAL:
        raise Refused(
            f"refusing to move {tp} out of physical store {held[0]}: policy would put it back; "
            "change the policy instead",
            "Refused",
        )
    copied = False
    if not dst:
        sc = src[0][1]
        # X509Store.Add carries only the key-provider link: the key stays in its key set (a
        # user key stays a user key). Only with_key exports and re-imports it into the
        # destination's key set, which needs an exportable key (docs/windows-facts.md).
        storage = sc.key_storage
        if p.get("with_key") and sc.key is not None:
            if not sc.key_exportable:
                raise Refused(
                    f"the private key of {tp} cannot be exported: it cannot be moved into "
                    "another key set; re-import the original PFX"
                )
            storage = "machine" if p["to_location"] == "LocalMachine" else "user"
        clone = SimCert(
            sc.cert,
            sc.friendly_name,
            sc.key,
            storage if sc.key is not None else None,
            sc.key_exportable,
        )
        h.model.add(p["to_location"], p["to_store"], clone)
        copied = True
    removed, backup = False, None
    if p.get("remove_source", True) and src:
        backup = _cert_doc(*src[0])
        for k, _ in src:
            h.model.discard(k, tp)
        removed = True
    data = {"thumbprint": tp, "copied": copied, "removed_source": removed, "backup": backup}
    return True, copied or removed, data, None


def _set_binding(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    site, ip, port, host = p["site"], p.get("ip", "*"), int(p.get("port", 443)), p.get("host", "")
    tp, store = str(p["thumbprint"]).upper(), p.get("store_name", "My")
    cert = [c for _, c in h.model.copies(tp, "LocalMachine", store)]
    if not cert or cert[0].key is None or cert[0].key_storage != "machine":
        raise Refused(
            "A specified logon session does not exist. It may already have been terminated. "
            f"(0x80070520): {tp} has no machine private key in LocalMachine\\{store}",
            "InvalidOperation",
        )
    s, b = _binding(h.model, site, ip, port, host)
    previous = h.model.binding_document(b, site) if b is not None else None
    created = b is None
    if b is None:
        b = SimBinding("https", ip, port, host, 0)
        s.bindings.append(b)
    b.ssl_flags = (b.ssl_flags | int(p.get("ssl_flags_set", 0))) & ~int(p.get("ssl_flags_clear", 0))
    kind: Literal["ipport", "hostnameport", "ccs"] = (
        "ccs" if b.ssl_flags & 2 else "hostnameport" if b.ssl_flags & 1 else "ipport"
    )
    h.model.sslcert[b.endpoint] = SslCertEntry(b.endpoint, kind, tp, store)
    h.model.drop_unused_sslcert()
    current = h.model.binding_document(b, site)
    changed = created or previous != current or bool(p.get("reapply", False))
    if changed:  # IIS commits (and HTTP.sys is updated) only when something was written
        h.model.refresh_served("binding", h.served_cache_refresh, h.clock(), b.endpoint)
    data = {"created": created, "previous": previous, "current": current}
    return True, changed, data, None


def _remove_binding(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    s, b = _binding(
        h.model, p["site"], p.get("ip", "*"), int(p.get("port", 443)), p.get("host", "")
    )
    if b is None:
        return True, False, {"removed": False, "previous": None}, None
    previous = h.model.binding_document(b, s.name)
    s.bindings.remove(b)
    h.model.drop_unused_sslcert()
    return True, True, {"removed": True, "previous": previous}, None


def _set_root_auto_update(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    previous = h.model.disable_root_auto_update
    h.model.disable_root_auto_update = p.get("disabled")
    current = h.model.disable_root_auto_update
    return True, previous != current, {"previous": previous, "current": current}, None


def _restart(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    mode = p["mode"]
    recycled: list[str] = []
    if mode == "recycle":
        for pool in p.get("app_pools") or []:
            if pool not in h.model.app_pools:
                raise Refused(f"Cannot find application pool '{pool}'.", "ObjectNotFound")
            h.model.recycle_count[pool] = h.model.recycle_count.get(pool, 0) + 1
            recycled.append(pool)
        event: CacheEvent = "recycle"
    elif mode == "iisreset":
        h.model.iisreset_count += 1
        event = "iisreset"
    else:
        _restart_http(h.model)
        event = "http_service"
    h.model.refresh_served(event, h.served_cache_refresh, h.clock())
    exit_code = 0 if mode == "iisreset" else None
    return True, True, {"mode": mode, "exit_code": exit_code, "recycled": recycled}, None


def _restart_http(model: HostModel) -> None:
    """``net stop http /y``, ``net start http``; what was running runs again afterwards.

    A service that will not stop (``http_stop_blocked_by``) makes the stop fail after its
    dependants stopped: HTTP keeps running (nothing is refreshed), the template's finally
    block starts the stopped ones again, and the run fails with the exit code.
    """
    running = [name for name, state in model.services.items() if state == "Running"]
    blocker = model.http_stop_blocked_by
    for name in running:
        if name not in ("HTTP", blocker):
            model.services[name] = "Stopped"
    if blocker is None:
        model.services["HTTP"] = "Running"  # stopped and started again
    for name in running:  # the finally block
        model.services[name] = "Running"
    if blocker is not None:
        raise Refused(
            "net stop http /y failed with exit code 2: The service could not be controlled in "
            f"its present state ({blocker}).",
            "NativeCommandFailed",
        )


def _verify_chain(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    tp = str(p["thumbprint"]).upper()
    found = h.model.copies(tp, p.get("store_location", "LocalMachine"), p.get("store_name", "My"))
    if not found:
        raise Refused(f"certificate {tp} not found", "ObjectNotFound")
    pred = h.model.build_chain(found[0][1].cert, h.clock())
    elements = [
        {
            "thumbprint": thumbprint(c),
            "subject": c.subject.rfc4514_string(),
            "der_b64": base64.b64encode(c.public_bytes(_DER)).decode(),
            "status": [],
        }
        for c in pred.built
    ]
    status = [] if pred.trusted else ["PartialChain" if not pred.anchor else "UntrustedRoot"]
    return True, False, {"valid": bool(pred.trusted), "status": status, "elements": elements}, None


# ---------------------------------------------------------------------- Central Certificate Store

_BAD_PFX_PASSWORD = "The specified network password is not correct."  # noqa: S105 (a message)


def _share_name(model: HostModel, name: str) -> str | None:
    """The stored name of a share file, compared case-insensitively (NTFS/SMB)."""
    return next((k for k in model.ccs_files if k.lower() == name.lower()), None)


def _open_pfx(raw: bytes, password: str | None) -> tuple[Any, Any, list[x509.Certificate]]:
    """(key, leaf, extra certificates) of a PFX, as X509Certificate2Collection.Import opens it;
    a wrong or missing password fails with Windows' message (0x80070056)."""
    for attempt in [password] if password else [None, ""]:  # Windows tries NULL and ""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(
                raw, attempt.encode() if attempt is not None else None
            )
        except ValueError:
            continue
        return key, cert, list(extra)
    raise Refused(_BAD_PFX_PASSWORD, "CryptographicException")


def _inspect_ccs(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    m = h.model
    files = []
    for name in p.get("files") or []:
        record: dict[str, Any] = {"file": name, "path": "", "present": False, "sha256": None,
                                  "certificates": [], "error": None}  # fmt: skip
        files.append(record)
        if not m.ccs_location:
            record["error"] = "no Central Certificate Store location is configured"
            continue
        record["path"] = f"{m.ccs_location.rstrip(chr(92))}\\{name}"
        stored = _share_name(m, name)
        if stored is None:
            continue
        raw = m.ccs_files[stored]
        record["present"] = True
        record["sha256"] = hashlib.sha256(raw).hexdigest().upper()
        try:
            key, leaf, extra = _open_pfx(raw, p.get("password"))
        except Refused as exc:
            record["error"] = exc.message
            continue
        for cert in ([leaf] if leaf is not None else []) + extra:
            record["certificates"].append(
                {"der_b64": base64.b64encode(cert.public_bytes(_DER)).decode(),
                 "thumbprint": thumbprint(cert),
                 "has_private_key": cert is leaf and key is not None}
            )  # fmt: skip
    data = {"enabled": m.ccs_enabled, "location": m.ccs_location, "files": files, "error": None}
    return True, False, data, None


def _ccs_names(m: HostModel, p: Mapping[str, Any]) -> tuple[str, str]:
    name, backup = m.ccs_file(p["path"]), m.ccs_file(p["backup_path"])
    if name is None or backup is None:
        raise Refused("the simulated host models only files in its CCS share", "NotImplemented")
    return name, backup


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest().upper()


def _restore_ccs_pfx(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    m = h.model
    name, backup = _ccs_names(m, p)
    data: dict[str, Any] = {"path": p["path"], "backup_path": p["backup_path"],
                            "restored": False, "sha256": None}  # fmt: skip
    kept = _share_name(m, backup)
    if kept is not None:
        m.ccs_files[_share_name(m, name) or name] = m.ccs_files[kept]
        data["restored"] = True
    current = _share_name(m, name)
    if current is not None:
        data["sha256"] = _sha256(m.ccs_files[current])
    return True, kept is not None, data, None


def _rebuild_ccs_pfx(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    m = h.model
    name, backup = _ccs_names(m, p)
    stored = _share_name(m, name)
    if stored is None:
        raise Refused(f"Could not find file '{p['path']}'.", "FileNotFoundException")
    raw = m.ccs_files[stored]
    data: dict[str, Any] = {"path": p["path"], "backup_path": p["backup_path"]}
    data.update(previous_sha256=_sha256(raw), sha256=None, added=[])
    password = p.get("password")
    key, leaf, extra = _open_pfx(raw, password)
    held = {thumbprint(c) for c in ([leaf] if leaf is not None else []) + extra}
    adding = [x509.load_der_x509_certificate(base64.b64decode(d)) for d in p["add_der_b64"]]
    adding = [c for c in adding if thumbprint(c) not in held]
    if adding:
        if data["previous_sha256"] != p.get("expected_sha256"):
            raise Refused(
                f"the file changed since it was observed (SHA-256 {data['previous_sha256']}): "
                "plan again"
            )
        if _share_name(m, backup) is not None:
            raise Refused(f"the backup path exists already: {p['backup_path']}", "ResourceExists")
        m.ccs_files[backup] = raw
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        m.ccs_files[stored] = pkcs12.serialize_key_and_certificates(
            None, key, leaf, [*extra, *adding], encryption
        )
        data["added"] = [thumbprint(c) for c in adding]
    data["sha256"] = _sha256(m.ccs_files[stored])
    return True, bool(adding), data, None


def _outbound_tls_test(h: HandlerHost, p: Mapping[str, Any]) -> Doc:
    """HttpWebRequest to a URL: its server's chain validated by the host's chain engine
    (:meth:`HostModel.client_chain`); a URL the model does not list does not resolve."""
    url = p["url"]
    data: dict[str, Any] = {"url": url, "web_status": "Success", "http_status": 200}
    data.update(message=None, leaf_thumbprint=None, chain_status=[])
    sent = h.model.outbound.get(url)
    if not sent:
        data.update(web_status="NameResolutionFailure", http_status=None,
                    message="The remote name could not be resolved")  # fmt: skip
        return True, False, data, None
    pred = h.model.client_chain(sent, h.clock())
    data["leaf_thumbprint"] = thumbprint(sent[0])
    if not pred.trusted:
        status = "PartialChain" if not pred.anchor else "UntrustedRoot"
        data.update(web_status="TrustFailure", http_status=None, chain_status=[status],
                    message="The underlying connection was closed: Could not establish trust "
                    "relationship for the SSL/TLS secure channel.")  # fmt: skip
    return True, False, data, None


HANDLERS: dict[str, Callable[[HandlerHost, Mapping[str, Any]], Doc]] = {
    "observe": _observe,
    "import_certificate": _import_certificate,
    "remove_certificate": _remove_certificate,
    "disallow_certificate": _disallow_certificate,
    "import_pfx": _import_pfx,
    "move_certificate": _move_certificate,
    "set_binding": _set_binding,
    "remove_binding": _remove_binding,
    "set_root_auto_update": _set_root_auto_update,
    "restart": _restart,
    "verify_chain": _verify_chain,
    "inspect_ccs": _inspect_ccs,
    "outbound_tls_test": _outbound_tls_test,
    "rebuild_ccs_pfx": _rebuild_ccs_pfx,
    "restore_ccs_pfx": _restore_ccs_pfx,
}
