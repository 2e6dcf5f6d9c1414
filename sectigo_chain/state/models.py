"""Desired and observed state of a Windows/IIS host (pydantic v2, frozen, ``extra="forbid"``).

* :class:`DesiredState` says which certificates must be present or absent in which store, which
  https binding must use which certificate, how to restart and what to do about the self-signed
  root. :func:`sectigo_chain.state.recipe.sectigo_fix` builds one from the manual procedure.
* :class:`ObservedState` is the document the ``observe`` template returns
  (docs/template-contract.md). Certificates travel as base64 DER and are parsed once (cached).

Both export a JSON schema (``DesiredState.model_json_schema()``). Secrets (the PFX and its
password) are ``SecretBytes``/``SecretStr``: masked in repr and in JSON dumps.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import re
from typing import Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr, field_validator

from sectigo_chain.x509.certs import normalize_thumbprint

__all__ = [
    "BindingSpec",
    "CertificateSpec",
    "DesiredState",
    "ObservedAppPool",
    "ObservedBinding",
    "ObservedCcs",
    "ObservedCcsCert",
    "ObservedCcsFile",
    "ObservedCertificate",
    "ObservedOS",
    "ObservedServed",
    "ObservedSite",
    "ObservedSslCert",
    "ObservedState",
    "PhysicalStore",
    "RestartMode",
    "RootStrategy",
    "StoreLocation",
    "StoreName",
    "parse_der_b64",
]

StoreLocation = Literal["LocalMachine", "CurrentUser", "SYSTEM"]
StoreName = Literal["Root", "CA", "My", "WebHosting", "Disallowed", "AuthRoot"]
PhysicalStore = Literal[".Default", ".AuthRoot", ".GroupPolicy", ".Enterprise"]
RestartMode = Literal["iisreset", "recycle", "none"]
RootStrategy = Literal["remove", "remove_and_disallow", "disable_auto_update", "keep"]
RootKeyName = Literal["R46", "E46"]

# Server 2016 version 1709 is build 16299: older builds cannot import AES-protected PFX files.
FIRST_AES_PFX_BUILD = 16299


@functools.lru_cache(maxsize=4096)
def parse_der_b64(der_b64: str) -> x509.Certificate:
    """Parse a base64 DER certificate (cached: every observed certificate is parsed once)."""
    return x509.load_der_x509_certificate(base64.b64decode(der_b64))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- desired state


class CertificateSpec(_Frozen):
    """A certificate that must be present in, or absent from, one store.

    ``exclusive`` (present only): copies of the same certificate anywhere else (another store or
    location, e.g. Root, CurrentUser, My) are misplaced and removed, and so are duplicates in
    the intermediate stores (an expired certificate with the same subject and key).
    ``when_root`` makes the spec conditional: it applies only when the site's certificate
    chains to that root (the recipe uses it when the leaf is only known on the host).
    """

    role: Literal["cross_sign", "self_signed_root", "other"]
    thumbprint: str
    der_b64: str | None = None
    ensure: Literal["present", "absent"]
    store_location: StoreLocation = "LocalMachine"
    store_name: StoreName
    exclusive: bool = False
    when_root: RootKeyName | None = None
    friendly_name: str | None = None
    reason: str = ""

    @field_validator("thumbprint")
    @classmethod
    def _norm(cls, value: str) -> str:
        return normalize_thumbprint(value)

    @property
    def store(self) -> str:
        """``Location\\Name``."""
        return f"{self.store_location}\\{self.store_name}"


_HOST_HEADER = re.compile(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")


class BindingSpec(_Frozen):
    """The https binding of a site and the certificate it must use.

    With ``pfx`` the certificate is that PFX's leaf (imported into LocalMachine\\My); without,
    it is whatever is bound now ("fix the certificate already bound"). The binding is changed
    only when the certificate (or the SNI flag) differs from what is bound.
    """

    site: str
    host: str = ""
    ip: str = "*"
    port: int = Field(443, ge=1, le=65535)
    sni: bool = False
    store_name: Literal["My", "WebHosting"] = "My"
    thumbprint: str | None = None
    leaf_der_b64: str | None = None
    pfx: SecretBytes | None = None
    pfx_password: SecretStr | None = None
    pfx_protection: Literal["aes", "legacy", "mixed", "none", "unknown"] | None = None
    legacy_pfx: SecretBytes | None = Field(
        None, description="the same PFX re-encoded with 3DES/SHA-1 for builds before 16299"
    )

    @field_validator("thumbprint")
    @classmethod
    def _norm(cls, value: str | None) -> str | None:
        return None if value is None else normalize_thumbprint(value)

    @field_validator("host")
    @classmethod
    def _host_header(cls, value: str) -> str:
        # IIS host headers are DNS names (IIS 10 also takes a leading "*." wildcard); spaces,
        # colons or slashes would make another binding string than the operator meant.
        if value and not (len(value) <= 253 and _HOST_HEADER.fullmatch(value)):
            raise ValueError(f"{value!r} is not a host name (letters, digits, '-', '.')")
        return value

    @field_validator("ip")
    @classmethod
    def _binding_ip(cls, value: str) -> str:
        if value == "*":
            return value
        try:
            ipaddress.ip_address(value.strip("[]"))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or *") from None
        return value

    @property
    def endpoint(self) -> str:
        """``ip:port:host`` as IIS writes a binding."""
        return f"{self.ip}:{self.port}:{self.host}"


class DesiredState(_Frozen):
    """What the host must look like after the fix."""

    certificates: tuple[CertificateSpec, ...] = ()
    bindings: tuple[BindingSpec, ...] = ()
    restart: RestartMode = "iisreset"
    root_strategy: RootStrategy = "remove"
    description: str = ""
    rebuild_ccs: bool = Field(
        False,
        description="plan to rebuild a Central Certificate Store PFX that lacks the "
        "intermediates with the full chain (the original kept beside it); off: only a warning",
    )
    ccs_password: SecretStr | None = Field(
        None, description="the private-key password of the CCS PFX files (None: no password)"
    )
    outbound_url: str | None = Field(
        None,
        description="after a distrust action, test the host's own outbound TLS to this https "
        "URL (issue 17; None: no self-test)",
    )

    def __str__(self) -> str:
        """Readable text: each certificate and binding wanted (no DER, no secret)."""
        lines = [f"Desired state{': ' + self.description if self.description else ''}"]
        for spec in self.certificates:
            name = spec.friendly_name or spec.role
            only = ", only there" if spec.exclusive else ""
            lines.append(
                f"  {spec.ensure:<7} {name} ({spec.thumbprint}) in "
                f"{spec.store_location}\\{spec.store_name}{only}"
            )
        for binding in self.bindings:
            cert = binding.thumbprint or ("the PFX given" if binding.pfx else "the bound one")
            sni = ", SNI" if binding.sni else ""
            lines.append(f"  binding {binding.site!r} https {binding.endpoint}{sni}: {cert}")
        lines.append(f"  restart: {self.restart}; self-signed root: {self.root_strategy}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- observed state


class ObservedOS(_Frozen):
    """Operating system facts."""

    caption: str = ""
    version: str = ""
    build: int = 0
    ubr: int | None = None


class ObservedCertificate(_Frozen):
    """One certificate in one (logical, physical) store."""

    store_location: StoreLocation
    store_name: StoreName
    physical_store: PhysicalStore | None = None
    thumbprint: str
    der_b64: str
    friendly_name: str = ""
    has_private_key: bool = False
    key_storage: Literal["machine", "user"] | None = None
    key_exportable: bool | None = None

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate (cached by DER)."""
        return parse_der_b64(self.der_b64)

    @property
    def store(self) -> str:
        """``Location\\Name``."""
        return f"{self.store_location}\\{self.store_name}"

    @property
    def where(self) -> str:
        """``Location\\Name`` plus the physical store when it is not the default."""
        phys = self.physical_store
        return self.store if phys in (None, ".Default") else f"{self.store} ({phys})"


class ObservedBinding(_Frozen):
    """One IIS binding."""

    protocol: str
    ip: str = "*"
    port: int = 0
    host: str = ""
    ssl_flags: int = 0
    certificate_hash: str | None = None
    certificate_store: str | None = None

    @property
    def sni(self) -> bool:
        """sslFlags bit 1."""
        return bool(self.ssl_flags & 1)

    @property
    def ip_port(self) -> str:
        """``0.0.0.0:443`` for ``*``, as HTTP.sys names it."""
        return f"{'0.0.0.0' if self.ip in ('*', '') else self.ip}:{self.port}"  # noqa: S104


class ObservedSite(_Frozen):
    """One IIS site."""

    name: str
    id: int = 0
    state: str = "Started"
    app_pool: str = ""
    bindings: tuple[ObservedBinding, ...] = ()


class ObservedAppPool(_Frozen):
    """One IIS application pool."""

    name: str
    state: str = "Started"


class ObservedSslCert(_Frozen):
    """One HTTP.sys certificate entry (``netsh http show sslcert``)."""

    endpoint: str
    kind: Literal["ipport", "hostnameport", "ccs"]
    certificate_hash: str | None = None
    store_name: str | None = None
    app_id: str | None = None


class ObservedServed(_Frozen):
    """What a site's https endpoint serves, observed by the *caller* over TLS (the ``observe``
    template does not see it): the certificates' thumbprints in wire order, or why it could
    not be observed. Passed to the planner as data, so the planner stays pure."""

    site: str
    endpoint: str = ""  # where it was fetched (for messages)
    thumbprints: tuple[str, ...] = ()
    error: str | None = None

    @field_validator("thumbprints")
    @classmethod
    def _norm(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalize_thumbprint(t) for t in value)


class ObservedCcsCert(_Frozen):
    """One certificate inside a Central Certificate Store PFX (public part only)."""

    der_b64: str
    thumbprint: str
    has_private_key: bool = False

    @field_validator("thumbprint")
    @classmethod
    def _norm(cls, value: str) -> str:
        return normalize_thumbprint(value)

    @property
    def certificate(self) -> x509.Certificate:
        return parse_der_b64(self.der_b64)


class ObservedCcsFile(_Frozen):
    """One PFX file of the Central Certificate Store, as ``inspect_ccs`` read it: present or
    not, the SHA-256 of its bytes (read without the password), and, when the password opened
    it, the certificates it holds (``error`` says why not)."""

    file: str
    path: str = ""
    present: bool = False
    sha256: str | None = None
    certificates: tuple[ObservedCcsCert, ...] = ()
    error: str | None = None

    @property
    def leaf(self) -> ObservedCcsCert | None:
        """The certificate with the private key (the one IIS serves)."""
        return next((c for c in self.certificates if c.has_private_key), None)


class ObservedCcs(_Frozen):
    """The Central Certificate Store as the host's IIS is configured to use it
    (``HKLM\\SOFTWARE\\Microsoft\\IIS\\CentralCertProvider``) and the PFX files its CCS
    bindings need (``<host>.pfx``; a wildcard ``_.<domain>.pfx``)."""

    enabled: bool = False
    location: str = ""
    files: tuple[ObservedCcsFile, ...] = ()
    error: str | None = None

    def file(self, name: str) -> ObservedCcsFile | None:
        return next((f for f in self.files if f.file.lower() == name.lower()), None)


class ObservedState(_Frozen):
    """What the ``observe`` template reports about a host (and, in ``served``, what its sites
    serve, when the caller observed that over TLS)."""

    computer_name: str = ""
    os: ObservedOS = ObservedOS()
    powershell_version: str = ""
    disable_root_auto_update: bool | None = None
    iis_installed: bool = True
    certificates: tuple[ObservedCertificate, ...] = ()
    sites: tuple[ObservedSite, ...] = ()
    app_pools: tuple[ObservedAppPool, ...] = ()
    sslcert: tuple[ObservedSslCert, ...] = ()
    served: tuple[ObservedServed, ...] = ()
    ccs: ObservedCcs | None = None  # inspect_ccs: only for hosts with a CCS binding

    def find(
        self,
        thumbprint: str,
        store_location: StoreLocation | None = None,
        store_name: StoreName | None = None,
    ) -> list[ObservedCertificate]:
        """Every copy of a certificate, optionally restricted to one location and store."""
        tp = normalize_thumbprint(thumbprint)
        return [
            c
            for c in self.certificates
            if c.thumbprint == tp
            and (store_location is None or c.store_location == store_location)
            and (store_name is None or c.store_name == store_name)
        ]

    def in_store(
        self, store_location: StoreLocation, store_name: StoreName
    ) -> list[ObservedCertificate]:
        """Every certificate of one logical store."""
        return [
            c
            for c in self.certificates
            if c.store_location == store_location and c.store_name == store_name
        ]

    def site(self, name: str) -> ObservedSite | None:
        """The site with this name (case-insensitive, as IIS compares them)."""
        for s in self.sites:
            if s.name.lower() == name.lower():
                return s
        return None

    @property
    def auto_root_update_on(self) -> bool:
        """Automatic Root Update is on unless the policy value disables it."""
        return self.disable_root_auto_update is not True

    def __str__(self) -> str:
        """Readable text: the host, its certificates per store, sites and HTTP.sys entries."""
        name = self.computer_name or "host"
        build = f"build {self.os.build}" if self.os.build else "unknown build"
        lines = [f"Observed {name}: {self.os.caption or 'Windows'} ({build}); Automatic Root "
                 f"Update {'on' if self.auto_root_update_on else 'off'}"]  # fmt: skip
        for cert in self.certificates:
            label = cert.friendly_name or cert.thumbprint
            key = " (private key)" if cert.has_private_key else ""
            lines.append(f"  {cert.where:<28} {label} ({cert.thumbprint}){key}")
        for site in self.sites:
            bindings = ", ".join(
                f"{b.protocol} {b.ip}:{b.port}:{b.host}"
                + (f" -> {b.certificate_hash}" if b.certificate_hash else "")
                for b in site.bindings
            )
            lines.append(f"  site {site.name!r} ({site.state}): {bindings or 'no binding'}")
        for entry in self.sslcert:
            lines.append(f"  http.sys {entry.endpoint}: {entry.certificate_hash or '-'}")
        return "\n".join(lines)
