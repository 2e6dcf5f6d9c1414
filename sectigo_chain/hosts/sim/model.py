"""The in-memory model of a Windows/IIS host behind the ``SimulatedHost`` executor.

This is a MODEL built from public documentation (Microsoft docs, KB 2831004, vendor guides,
issue threads), not Windows. It holds:

* certificate stores per location (``LocalMachine``, ``CurrentUser``, ``SYSTEM``) and name, each
  certificate in a physical store (``.Default``, ``.AuthRoot``, ``.GroupPolicy``,
  ``.Enterprise``) with a friendly name and, for leaves, a private key in the machine or user
  key set;
* IIS sites, bindings and app pools, and HTTP.sys certificate entries (``IP:port`` shared by
  every non-SNI binding on it, ``host:port`` for SNI bindings);
* the ``DisableRootAutoUpdate`` policy value and Automatic Root Update: when it is on and the
  host reaches Windows Update, building a chain re-adds a removed CTL root (``.AuthRoot``) whose
  subject issues a certificate on the host (the "drift");
* what the templates refuse on (issue 11): ``elevated`` (False: a non-elevated account; every
  action template stops with PermissionDenied), ``access_denied`` (stores whose opening fails
  with 0x80070005: an error, never "absent"), and the services an HTTP service restart touches
  (``services``; ``http_stop_blocked_by`` names a service that will not stop, so
  ``net stop http /y`` stops only part of them and fails);
* a served-chain cache per HTTP.sys entry. ``served_cache_refresh`` names the weakest event
  that refreshes it, on the ladder ``binding`` < ``recycle`` < ``iisreset`` < ``http_service``
  (DESIGN.md 1.5: reports differ; the default ``"iisreset"`` means re-applying a binding or
  recycling a pool does not refresh it, ``iisreset`` and restarting HTTP do).

The served chain itself comes from :func:`sectigo_chain.x509.paths.predict_windows_chain` (the
shortest trusted path wins, KB 2831004).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sectigo_chain.x509.certs import PrivateKey, thumbprint

__all__ = [
    "CACHE_EVENTS",
    "HostModel",
    "SimBinding",
    "SimCert",
    "SimSite",
    "SslCertEntry",
]

IIS_APP_ID = "{4dc3e181-e14b-4a21-b022-59fc669b0914}"
CacheEvent = Literal["binding", "recycle", "iisreset", "http_service"]
CACHE_EVENTS: tuple[CacheEvent, ...] = ("binding", "recycle", "iisreset", "http_service")
StoreKey = tuple[str, str, str]  # (location, logical store name, physical store)
REMOVABLE_PHYSICAL = (".Default", ".AuthRoot")
# CurrentUser logical stores that include the LocalMachine store of the same name.
INHERITED_STORES = ("Root", "CA", "Disallowed")


@dataclass
class SimCert:
    """One certificate in one physical store, with its optional private key."""

    cert: x509.Certificate
    friendly_name: str = ""
    key: PrivateKey | None = field(default=None, repr=False)
    key_storage: Literal["machine", "user"] | None = None
    key_exportable: bool | None = None

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.cert)

    @property
    def der_b64(self) -> str:
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass
class SimBinding:
    """An IIS binding; an https binding's certificate lives in the HTTP.sys entry."""

    protocol: str
    ip: str = "*"
    port: int = 443
    host: str = ""
    ssl_flags: int = 0

    @property
    def endpoint(self) -> str:
        """The HTTP.sys entry this https binding uses (sslFlags bit 2: the Central
        Certificate Store entry of the port, which ignores any bound hash)."""
        if self.ssl_flags & 2:
            return f"ccs:{self.port}"
        if self.ssl_flags & 1:
            return f"{self.host}:{self.port}"
        return f"{'0.0.0.0' if self.ip in ('*', '') else self.ip}:{self.port}"  # noqa: S104


@dataclass
class SimSite:
    name: str
    id: int
    app_pool: str = "DefaultAppPool"
    state: str = "Started"
    bindings: list[SimBinding] = field(default_factory=list)


@dataclass
class SslCertEntry:
    endpoint: str
    kind: Literal["ipport", "hostnameport", "ccs"]
    certificate_hash: str
    store_name: str = "My"
    app_id: str = IIS_APP_ID


@dataclass
class HostModel:
    """The mutable state of one simulated host."""

    computer_name: str = "SIM-IIS01"
    os_caption: str = "Microsoft Windows Server 2019 Datacenter"
    os_version: str = "10.0.17763"
    os_build: int = 17763
    os_ubr: int | None = 5458
    powershell_version: str = "5.1.17763.5458"
    disable_root_auto_update: bool | None = None
    windows_update_reachable: bool = False
    iis_installed: bool = True
    stores: dict[StoreKey, dict[str, SimCert]] = field(default_factory=dict)
    sites: dict[str, SimSite] = field(default_factory=dict)
    app_pools: dict[str, str] = field(default_factory=dict)
    sslcert: dict[str, SslCertEntry] = field(default_factory=dict)
    ctl: dict[str, x509.Certificate] = field(default_factory=dict)
    served_cache: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    recycle_count: dict[str, int] = field(default_factory=dict)
    iisreset_count: int = 0
    elevated: bool = True
    access_denied: set[tuple[str, str]] = field(default_factory=set)  # (location, store)
    services: dict[str, str] = field(
        default_factory=lambda: {"HTTP": "Running", "WAS": "Running", "W3SVC": "Running"}
    )
    http_stop_blocked_by: str | None = None
    # The IIS Central Certificate Store (CentralCertProvider: Enabled, CertStoreLocation) and
    # the files of its share: file name -> PFX bytes (docs/windows-facts.md, "Windows facts
    # used by issue 17 (second session)").
    ccs_enabled: bool = False
    ccs_location: str = ""
    ccs_files: dict[str, bytes] = field(default_factory=dict)
    # the CCS PrivateKeyPassword IIS holds (encrypted in its registry key; IIS can read it)
    ccs_key_password: str | None = field(default=None, repr=False)
    # Servers the host's own clients reach (outbound_tls_test): https URL -> the chain that
    # server sends, leaf first. A URL not listed does not resolve.
    outbound: dict[str, list[x509.Certificate]] = field(default_factory=dict)

    # ------------------------------------------------------------------ stores

    def add(
        self,
        location: str,
        store: str,
        cert: x509.Certificate | SimCert,
        physical: str = ".Default",
        **kw: Any,
    ) -> SimCert:
        """Put a certificate into a physical store (``AuthRoot`` means ``Root``/.AuthRoot)."""
        if store == "AuthRoot":
            store, physical = "Root", ".AuthRoot"
        sc = cert if isinstance(cert, SimCert) else SimCert(cert, **kw)
        self.stores.setdefault((location, store, physical), {})[sc.thumbprint] = sc
        return sc

    def copies(
        self, thumb: str, location: str | None = None, store: str | None = None
    ) -> list[tuple[StoreKey, SimCert]]:
        """Every (store key, certificate) holding ``thumb``."""
        physical = None
        if store == "AuthRoot":  # LocalMachine\AuthRoot is Root's .AuthRoot physical store
            store, physical = "Root", ".AuthRoot"
        out = []
        for key, certs in sorted(self.stores.items()):
            if (
                thumb in certs
                and (location is None or key[0] == location)
                and (store is None or key[1] == store)
                and physical in (None, key[2])
            ):
                out.append((key, certs[thumb]))
        return out

    def logical(self, location: str, store: str) -> list[SimCert]:
        """Every certificate of a logical store (all physical stores)."""
        return [
            c
            for key, certs in sorted(self.stores.items())
            if key[0] == location and key[1] == store
            for c in certs.values()
        ]

    def inherited_views(self) -> dict[StoreKey, dict[str, SimCert]]:
        """What CurrentUser's logical stores show of the machine's: every CurrentUser store but
        My includes the LocalMachine store of the same name (the ``.LocalMachine`` physical
        store); observe reports such an entry with no physical store. Keyed with ``""`` as the
        physical store; a certificate the user also holds in a user store is listed once."""
        views: dict[StoreKey, dict[str, SimCert]] = {}
        for store in INHERITED_STORES:
            own = {c.thumbprint for c in self.logical("CurrentUser", store)}
            seen = {
                c.thumbprint: c
                for c in self.logical("LocalMachine", store)
                if c.thumbprint not in own
            }
            if seen:
                views[("CurrentUser", store, "")] = seen
        return views

    def discard(self, key: StoreKey, thumb: str) -> SimCert | None:
        certs = self.stores.get(key)
        if not certs or thumb not in certs:
            return None
        sc = certs.pop(thumb)
        if not certs:
            del self.stores[key]
        return sc

    # ------------------------------------------------------------------ IIS / HTTP.sys

    def https_bindings(self) -> list[tuple[SimSite, SimBinding]]:
        return [(s, b) for s in self.sites.values() for b in s.bindings if b.protocol == "https"]

    def leaf_for(self, endpoint: str) -> SimCert | None:
        """The certificate HTTP.sys serves on an entry (from LocalMachine\\<store>)."""
        entry = self.sslcert.get(endpoint)
        if entry is None or entry.kind == "ccs":
            # CCS serves the PFX named after the host from the CCS share, never a store
            # certificate: the model has no share, so nothing it could serve.
            return None
        for _, sc in self.copies(entry.certificate_hash, "LocalMachine", entry.store_name):
            return sc
        return None

    def ccs_file(self, path: str) -> str | None:
        """The share's file name for a full path under the CCS location (None: elsewhere)."""
        prefix = self.ccs_location.rstrip("\\") + "\\"
        if not self.ccs_location or not path.lower().startswith(prefix.lower()):
            return None
        name = path[len(prefix) :]
        return None if "\\" in name or "/" in name else name

    def ccs_pfx_for(self, name: str) -> tuple[Any, x509.Certificate, list[x509.Certificate]] | None:
        """(key, leaf, the PFX's other certificates) IIS's CCS serves for an SNI name:
        ``<name>.pfx``, else ``_.<domain>.pfx``; None when the CCS is off or has no such file
        (or it does not open with the CCS password)."""
        from cryptography.hazmat.primitives.serialization import pkcs12

        if not self.ccs_enabled or not name:
            return None
        host = name.lower().rstrip(".")
        wanted = [f"{host}.pfx"]
        if host.count(".") >= 2:
            wanted.append(f"_.{host.split('.', 1)[1]}.pfx")
        files = {k.lower(): v for k, v in self.ccs_files.items()}
        for file in wanted:
            raw = files.get(file)
            if raw is None:
                continue
            secret = self.ccs_key_password.encode() if self.ccs_key_password else None
            try:
                key, leaf, extra = pkcs12.load_key_and_certificates(raw, secret)
            except ValueError:
                return None
            return (key, leaf, list(extra)) if key is not None and leaf is not None else None
        return None

    def served_ccs(self, entry: str, name: str, at: dt.datetime) -> list[x509.Certificate]:
        """The chain a CCS entry serves for an SNI name (cached per entry and name until a
        refresh, as other entries): the chain engine's path with the PFX's other certificates
        added to the intermediates (reported: win-acme #1347)."""
        from sectigo_chain.x509.paths import predict_windows_chain

        key = f"{entry}#{name.lower()}"
        if key in self.served_cache:
            return self.served_cache[key]
        found = self.ccs_pfx_for(name)
        if found is None:
            return []
        _key, leaf, extra = found
        self.auto_root_update()
        roots, cas = self.trust_inputs()
        pred = predict_windows_chain(leaf, root=roots, ca=[*cas, *extra], my=[], at=at)
        chain = list(pred.served)
        self.served_cache[key] = chain
        return chain

    def drop_unused_sslcert(self) -> None:
        used = {b.endpoint for _, b in self.https_bindings()}
        for ep in [e for e in self.sslcert if e not in used]:
            del self.sslcert[ep]

    # ------------------------------------------------------------------ chain engine

    def _disallowed(self) -> set[str]:
        return {c.thumbprint for c in self.logical("LocalMachine", "Disallowed")}

    def trust_inputs(self) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
        """(roots, intermediates) as SChannel (running as SYSTEM) sees them."""
        bad = self._disallowed()
        roots = [
            c.cert
            for loc in ("LocalMachine", "SYSTEM")
            for c in self.logical(loc, "Root")
            if c.thumbprint not in bad
        ]
        cas = [
            c.cert
            for loc in ("LocalMachine", "SYSTEM")
            for c in self.logical(loc, "CA")
            if c.thumbprint not in bad
        ]
        return _unique(roots), _unique(cas)

    def build_chain(self, leaf: x509.Certificate, at: dt.datetime) -> Any:
        """Run the modelled Windows chain engine (also triggers Automatic Root Update)."""
        from sectigo_chain.x509.paths import predict_windows_chain

        self.auto_root_update()
        roots, cas = self.trust_inputs()
        my = [c.cert for c in self.logical("LocalMachine", "My")]
        return predict_windows_chain(leaf, root=roots, ca=cas, my=my, at=at)

    def client_chain(self, sent: list[x509.Certificate], at: dt.datetime) -> Any:
        """The chain engine as a client on this host validating a server's ``sent`` chain:
        the host's roots and intermediates (Disallowed excluded) plus what the server sent.
        With Automatic Root Update on and Windows Update reachable, a CTL root that issued
        the top of the path is fetched into ``.AuthRoot`` first (unless disallowed), as for
        the host's own certificates."""
        from sectigo_chain.x509.paths import predict_windows_chain

        roots, cas = self.trust_inputs()
        pred = predict_windows_chain(sent[0], root=roots, ca=[*cas, *sent[1:]], my=[], at=at)
        if pred.trusted or not self.auto_root_update_effective:
            return pred
        present = {c.thumbprint for c in self.logical("LocalMachine", "Root")}
        wanted = {c.issuer for c in sent} | {c.issuer for c in cas}
        bad = self._disallowed()
        for thumb, cert in sorted(self.ctl.items()):
            if thumb not in present and thumb not in bad and cert.subject in wanted:
                self.add("LocalMachine", "Root", cert, ".AuthRoot")
        roots, cas = self.trust_inputs()
        return predict_windows_chain(sent[0], root=roots, ca=[*cas, *sent[1:]], my=[], at=at)

    @property
    def auto_root_update_effective(self) -> bool:
        return self.disable_root_auto_update is not True and self.windows_update_reachable

    def auto_root_update(self) -> list[str]:
        """Re-add removed CTL roots that issue a certificate on the host (when it is on)."""
        if not self.auto_root_update_effective:
            return []
        present = {c.thumbprint for c in self.logical("LocalMachine", "Root")}
        bad = self._disallowed()
        issuers = {
            sc.cert.issuer
            for certs in self.stores.values()
            for sc in certs.values()
            if sc.cert.issuer != sc.cert.subject
        }
        added = []
        for thumb, cert in sorted(self.ctl.items()):
            if thumb not in present and thumb not in bad and cert.subject in issuers:
                self.add("LocalMachine", "Root", cert, ".AuthRoot")
                added.append(thumb)
        return added

    def refresh_served(
        self, event: CacheEvent, rule: CacheEvent, at: dt.datetime, endpoint: str | None = None
    ) -> None:
        """Rebuild the served-chain cache if ``event`` is at least as strong as ``rule``; a
        binding event (``endpoint`` given) re-creates that one HTTP.sys entry and rebuilds
        only its chain (reported: win-acme #1941, #94; that other entries keep theirs is the
        less kind assumption, docs/windows-facts.md)."""
        if CACHE_EVENTS.index(event) < CACHE_EVENTS.index(rule):
            return
        if endpoint is not None:
            self.served_cache.pop(endpoint, None)
            self.served_for(endpoint, at)
            return
        self.served_cache.clear()
        for ep in sorted(self.sslcert):
            self.served_for(ep, at)

    def served_for(self, endpoint: str, at: dt.datetime) -> list[x509.Certificate]:
        """The chain HTTP.sys serves on an entry (cached until a refresh)."""
        if endpoint in self.served_cache:
            return self.served_cache[endpoint]
        leaf = self.leaf_for(endpoint)
        if leaf is None:
            return []
        chain = list(self.build_chain(leaf.cert, at).served)
        self.served_cache[endpoint] = chain
        return chain

    # ------------------------------------------------------------------ observe

    def observe_document(self, include_current_user: bool = True) -> dict[str, Any]:
        """The ``observe`` template's data document."""
        certs = []
        views = self.inherited_views() if include_current_user else {}
        for (loc, store, phys), items in sorted({**self.stores, **views}.items()):
            if loc == "CurrentUser" and not include_current_user:
                continue
            for thumb in sorted(items):
                sc = items[thumb]
                certs.append(
                    {
                        "store_location": loc,
                        "store_name": store,
                        "physical_store": phys or None,
                        "thumbprint": thumb,
                        "der_b64": sc.der_b64,
                        "friendly_name": sc.friendly_name,
                        "has_private_key": sc.key is not None,
                        "key_storage": sc.key_storage if sc.key is not None else None,
                        "key_exportable": sc.key_exportable if sc.key is not None else None,
                    }
                )
        sites = []
        for s in sorted(self.sites.values(), key=lambda s: s.id):
            sites.append(
                {
                    "name": s.name,
                    "id": s.id,
                    "state": s.state,
                    "app_pool": s.app_pool,
                    "bindings": [self.binding_document(b) for b in s.bindings],
                }
            )
        return {
            "computer_name": self.computer_name,
            "os": {
                "caption": self.os_caption,
                "version": self.os_version,
                "build": self.os_build,
                "ubr": self.os_ubr,
            },
            "powershell_version": self.powershell_version,
            "disable_root_auto_update": self.disable_root_auto_update,
            "iis_installed": self.iis_installed,
            "certificates": certs,
            "sites": sites,
            "app_pools": [{"name": n, "state": st} for n, st in sorted(self.app_pools.items())],
            "sslcert": [
                {
                    "endpoint": e.endpoint,
                    "kind": e.kind,
                    "certificate_hash": e.certificate_hash if e.kind != "ccs" else None,
                    "store_name": e.store_name,
                    "app_id": e.app_id,
                }
                for e in sorted(self.sslcert.values(), key=lambda e: e.endpoint)
            ],
        }

    def binding_document(self, b: SimBinding, site: str | None = None) -> dict[str, Any]:
        entry = self.sslcert.get(b.endpoint) if b.protocol == "https" else None
        doc: dict[str, Any] = {
            "protocol": b.protocol,
            "ip": b.ip,
            "port": b.port,
            "host": b.host,
            "ssl_flags": b.ssl_flags,
            "certificate_hash": entry.certificate_hash if entry and entry.kind != "ccs" else None,
            "certificate_store": entry.store_name if entry and entry.kind != "ccs" else None,
        }
        if site is not None:
            doc = {"site": site, **doc}
        return doc


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[str] = set()
    out = []
    for c in certs:
        fp = thumbprint(c)
        if fp not in seen:
            seen.add(fp)
            out.append(c)
    return out
