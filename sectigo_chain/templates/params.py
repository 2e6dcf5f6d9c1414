"""Parameter models of the PowerShell templates (one pydantic model per template).

Each model is the exact shape of one template's payload (docs/templates.md). Values are checked
here, in Python, where a mistake is cheap; the template re-checks only the few things it uses
in a path (thumbprint form, store names). Strings that are legitimate values (site names,
friendly names, app pool names, passwords) accept any text, hostile or not: they are safe
because they only ever travel inside the base64 payload, never in script text.

:data:`TEMPLATE_SPECS` maps each template name to its model and flags; ``templates.py`` is the
only code that uses it to find and render template files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

__all__ = [
    "TEMPLATE_SPECS",
    "ApplyPlanEntry",
    "ApplyPlanParams",
    "DisallowCertificateParams",
    "ImportCertificateParams",
    "ImportPfxParams",
    "InspectCcsParams",
    "MoveCertificateParams",
    "ObserveParams",
    "OutboundTlsTestParams",
    "RebuildCcsPfxParams",
    "RemoveBindingParams",
    "RemoveCertificateParams",
    "RestartParams",
    "RestoreCcsPfxParams",
    "SetBindingParams",
    "SetRootAutoUpdateParams",
    "TemplateParams",
    "TemplateSpec",
    "VerifyChainParams",
    "VerifyHostParams",
    "normalize_thumbprint",
]

# Characters people paste around thumbprints: spaces, colons, and the invisible marks the
# Windows certificate dialog copies along (U+200E/U+200F, bidi embeddings, BOM).
_THUMBPRINT_JUNK = re.compile("[\\s:\u200e\u200f\u202a-\u202e\ufeff]")
_THUMBPRINT = re.compile("[0-9A-F]{40}")
_HOST_HEADER = re.compile(r"[A-Za-z0-9*._-]*")

StoreLocation = Literal["LocalMachine", "CurrentUser"]
StoreName = Literal["Root", "CA", "My", "WebHosting", "Disallowed", "AuthRoot"]


def normalize_thumbprint(value: object) -> str:
    """Return ``value`` as 40 upper-case hex digits, or raise ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError("a thumbprint is a string of 40 hex digits (SHA-1 of the DER)")
    cleaned = _THUMBPRINT_JUNK.sub("", value).upper()
    if not _THUMBPRINT.fullmatch(cleaned):
        raise ValueError("a thumbprint is 40 hex digits (SHA-1 of the DER); check for typos")
    return cleaned


def _strict_b64(value: str) -> bytes:
    compact = re.sub(r"\s", "", value)
    try:
        decoded = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None
    if not decoded:
        raise ValueError("must not be empty")
    return decoded


def _check_der(value: str) -> str:
    der = _strict_b64(value)
    from cryptography import x509

    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError("not a DER-encoded X.509 certificate") from None
    return base64.b64encode(der).decode("ascii")


def _check_b64_secret(value: SecretStr) -> SecretStr:
    der = _strict_b64(value.get_secret_value())
    return SecretStr(base64.b64encode(der).decode("ascii"))


def _check_ip(value: str) -> str:
    if value == "*":
        return value
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        raise ValueError('an IP address or "*"') from None


def _check_host(value: str) -> str:
    if len(value) > 255 or not _HOST_HEADER.fullmatch(value):
        raise ValueError("a host header is empty or a DNS name (letters, digits, '.', '-', '*')")
    return value


def _check_name(value: str) -> str:
    if value == "":
        raise ValueError("must not be empty")
    return value


Thumbprint = Annotated[str, BeforeValidator(normalize_thumbprint)]
DerB64 = Annotated[str, AfterValidator(_check_der)]
SecretB64 = Annotated[SecretStr, AfterValidator(_check_b64_secret)]
IpAddress = Annotated[str, AfterValidator(_check_ip)]
HostHeader = Annotated[str, AfterValidator(_check_host)]
Name = Annotated[str, AfterValidator(_check_name)]
Port = Annotated[int, Field(ge=1, le=65535)]
SslFlagBits = Annotated[int, Field(ge=0, le=127)]


class TemplateParams(BaseModel):
    """Base of every template's parameters: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _thumbprint_matches_der(der_b64: str, thumbprint: str) -> None:
    actual = hashlib.sha1(base64.b64decode(der_b64), usedforsecurity=False).hexdigest().upper()
    if actual != thumbprint:
        raise ValueError(f"thumbprint {thumbprint} is not the SHA-1 of der_b64 ({actual})")


def _fill_thumbprint(data: Any) -> Any:
    """Let callers omit ``thumbprint`` when ``der_b64`` is given: it is computed."""
    if isinstance(data, dict) and "thumbprint" not in data and isinstance(data.get("der_b64"), str):
        try:
            der = _strict_b64(data["der_b64"])
        except ValueError:
            return data
        digest = hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()
        return {**data, "thumbprint": digest}
    return data


class ObserveParams(TemplateParams):
    """``observe``: read-only inventory of stores, IIS, HTTP.sys, OS and policy."""

    include_current_user: bool = True
    include_system_user: bool = True


_CCS_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.pfx")


def _check_ccs_file(value: str) -> str:
    if len(value) > 255 or not _CCS_FILE.fullmatch(value):
        raise ValueError("a CCS file name is <host>.pfx (letters, digits, '.', '-', '_')")
    return value


CcsFile = Annotated[str, AfterValidator(_check_ccs_file)]


class InspectCcsParams(TemplateParams):
    """``inspect_ccs``: read-only; the Central Certificate Store's settings and what the named
    PFX files hold (the password opens them; without it only presence and SHA-256)."""

    files: tuple[CcsFile, ...] = Field(default=(), max_length=256)
    password: SecretStr | None = None


class RestoreCcsPfxParams(TemplateParams):
    """``restore_ccs_pfx``: copy the backup a rebuild made back over the CCS file (the undo
    of ``rebuild_ccs_pfx``; no secret needed)."""

    path: Name
    backup_path: Name

    @model_validator(mode="after")
    def _paths(self) -> RestoreCcsPfxParams:
        if not self.path.lower().endswith(".pfx") or self.backup_path == self.path:
            raise ValueError("path must name a .pfx file and backup_path another file")
        if self.backup_path.lower().endswith(".pfx"):
            raise ValueError("backup_path must not end in .pfx (IIS would read it as a CCS file)")
        return self


class RebuildCcsPfxParams(RestoreCcsPfxParams):
    """``rebuild_ccs_pfx``: add intermediates to a CCS PFX, the original copied to
    ``backup_path`` first; the file must still have ``expected_sha256``."""

    expected_sha256: Annotated[str, Field(pattern=r"^[0-9A-F]{64}$")]
    add_der_b64: tuple[DerB64, ...] = Field(min_length=1)
    password: SecretStr | None = None


_HTTPS_URL = re.compile(
    r"https://[A-Za-z0-9._-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?"
)


def _check_url(value: str) -> str:
    if len(value) > 2048 or not _HTTPS_URL.fullmatch(value):
        raise ValueError("an https:// URL (host name, optional port and path, ASCII)")
    return value


class OutboundTlsTestParams(TemplateParams):
    """``outbound_tls_test``: read-only; one HEAD request to an https URL from the host, its
    certificate validated by the host's chain engine (the self-test after a distrust)."""

    url: Annotated[str, AfterValidator(_check_url)]
    timeout_ms: int = Field(15000, ge=1000, le=120000)


class ImportCertificateParams(TemplateParams):
    """``import_certificate``: add a public certificate to a LocalMachine store."""

    der_b64: DerB64
    thumbprint: Thumbprint
    store_location: Literal["LocalMachine"] = "LocalMachine"
    store_name: Literal["CA", "Root", "My", "WebHosting", "Disallowed"]
    friendly_name: str | None = None

    _fill = model_validator(mode="before")(_fill_thumbprint)

    @model_validator(mode="after")
    def _matches(self) -> ImportCertificateParams:
        _thumbprint_matches_der(self.der_b64, self.thumbprint)
        return self


class DisallowCertificateParams(TemplateParams):
    """``disallow_certificate``: put a certificate into LocalMachine\\Disallowed."""

    der_b64: DerB64
    thumbprint: Thumbprint

    _fill = model_validator(mode="before")(_fill_thumbprint)

    @model_validator(mode="after")
    def _matches(self) -> DisallowCertificateParams:
        _thumbprint_matches_der(self.der_b64, self.thumbprint)
        return self


class RemoveCertificateParams(TemplateParams):
    """``remove_certificate``: remove one thumbprint from one store (backup first)."""

    thumbprint: Thumbprint
    store_location: StoreLocation = "LocalMachine"
    store_name: StoreName
    physical_store: Literal[".Default", ".AuthRoot"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_policy_stores(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("physical_store") in (".GroupPolicy", ".Enterprise"):
            raise ValueError(
                f"a certificate in {data['physical_store']} comes back from policy; "
                "change the Group Policy or enterprise store instead of removing it locally"
            )
        return data

    @model_validator(mode="after")
    def _authroot_only_in_machine_root(self) -> RemoveCertificateParams:
        if self.physical_store == ".AuthRoot" and (
            self.store_location != "LocalMachine" or self.store_name != "Root"
        ):
            raise ValueError("physical_store .AuthRoot exists only under LocalMachine\\Root")
        return self


class ImportPfxParams(TemplateParams):
    """``import_pfx``: certificate plus private key into LocalMachine My/WebHosting."""

    pfx_b64: SecretB64
    password: SecretStr
    thumbprint: Thumbprint
    store_name: Literal["My", "WebHosting"] = "My"
    exportable: bool = False
    friendly_name: str | None = None


class MoveCertificateParams(TemplateParams):
    """``move_certificate``: copy (with its key link) and optionally remove the source."""

    thumbprint: Thumbprint
    from_location: StoreLocation
    from_store: StoreName
    to_location: StoreLocation
    to_store: StoreName
    remove_source: bool
    with_key: bool = False

    @model_validator(mode="after")
    def _different(self) -> MoveCertificateParams:
        if (self.from_location, self.from_store) == (self.to_location, self.to_store):
            raise ValueError("source and destination are the same store")
        return self


class _BindingKey(TemplateParams):
    site: Name
    ip: IpAddress = "*"
    port: Port = 443
    host: HostHeader = ""


class SetBindingParams(_BindingKey):
    """``set_binding``: create or update one https binding; only owned sslFlags bits change."""

    thumbprint: Thumbprint
    store_name: Literal["My", "WebHosting"] = "My"
    ssl_flags_set: SslFlagBits = 0
    ssl_flags_clear: SslFlagBits = 0
    # Write the same certificate again and commit, so IIS re-pushes the binding to HTTP.sys
    # (verify's first rung); False: nothing is committed when nothing differs.
    reapply: bool = False

    @model_validator(mode="after")
    def _flags(self) -> SetBindingParams:
        if self.ssl_flags_set & self.ssl_flags_clear:
            raise ValueError("ssl_flags_set and ssl_flags_clear must not share bits")
        if self.ssl_flags_set & 1 and self.host == "":
            raise ValueError("the SNI bit (1) needs a host header")
        return self


class RemoveBindingParams(_BindingKey):
    """``remove_binding``: remove one https binding (rollback of a created one)."""


class SetRootAutoUpdateParams(TemplateParams):
    """``set_root_auto_update``: DisableRootAutoUpdate policy; ``None`` deletes the value."""

    disabled: bool | None


class RestartParams(TemplateParams):
    """``restart``: iisreset, recycle named app pools, or restart the HTTP service."""

    mode: Literal["iisreset", "recycle", "http_service"]
    app_pools: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _pools(self) -> RestartParams:
        if self.mode == "recycle" and not self.app_pools:
            raise ValueError("mode 'recycle' needs at least one app pool name")
        if self.mode != "recycle" and self.app_pools:
            raise ValueError("app_pools only go with mode 'recycle'")
        return self


class VerifyChainParams(TemplateParams):
    """``verify_chain``: build the chain on the host (no revocation, no downloads)."""

    thumbprint: Thumbprint
    store_location: StoreLocation = "LocalMachine"
    store_name: StoreName = "My"


class ApplyPlanEntry(TemplateParams):
    """One action of ``apply_plan``: a template and its own encoded payload (which may hold
    secrets: it is masked wherever it is shown)."""

    template: Literal[
        "import_certificate", "remove_certificate", "disallow_certificate", "import_pfx",
        "move_certificate", "set_binding", "remove_binding", "set_root_auto_update", "restart",
        "rebuild_ccs_pfx", "restore_ccs_pfx",
    ]  # fmt: skip
    payload: SecretStr


class ApplyPlanParams(TemplateParams):
    """``apply_plan``: run the actions in order in one invocation, stop at the first failure;
    ``observe``: observe's payload, run after the last action when every one was done."""

    actions: tuple[ApplyPlanEntry, ...] = Field(min_length=1)
    observe: str | None = None


class VerifyHostParams(ObserveParams):
    """``verify_host``: observe (these are its parameters), then ``verify_chain`` for every
    certificate bound to an https binding."""


@dataclass(frozen=True)
class TemplateSpec:
    """What ``templates.py`` needs to know about one template."""

    model: type[TemplateParams]
    read_only: bool
    idempotent: bool
    # secret field -> how the standalone script asks for it on the host ("password"/"file")
    secret_prompts: tuple[tuple[str, str, str], ...] = ()
    # Generated from other templates (templates/compose.py): runs several in one invocation.
    composite: bool = False

    @property
    def secret_fields(self) -> frozenset[str]:
        """Names of the fields that hold secrets."""
        return frozenset(name for name, _, _ in self.secret_prompts)


# Every action template re-checks state before changing anything, so re-running it after a
# lost connection is safe: that is what "idempotent" promises the retry logic. Except restart:
# after a timeout the first run may still be stopping services; it is never retried.
TEMPLATE_SPECS: dict[str, TemplateSpec] = {
    "observe": TemplateSpec(ObserveParams, read_only=True, idempotent=True),
    "import_certificate": TemplateSpec(ImportCertificateParams, False, True),
    "remove_certificate": TemplateSpec(RemoveCertificateParams, False, True),
    "disallow_certificate": TemplateSpec(DisallowCertificateParams, False, True),
    "import_pfx": TemplateSpec(
        ImportPfxParams,
        read_only=False,
        idempotent=True,
        secret_prompts=(
            ("pfx_b64", "file", "Path of the PFX file to import"),
            ("password", "password", "Password of the PFX file"),
        ),
    ),
    "move_certificate": TemplateSpec(MoveCertificateParams, False, True),
    "set_binding": TemplateSpec(SetBindingParams, False, True),
    "remove_binding": TemplateSpec(RemoveBindingParams, False, True),
    "set_root_auto_update": TemplateSpec(SetRootAutoUpdateParams, False, True),
    "restart": TemplateSpec(RestartParams, read_only=False, idempotent=False),
    "verify_chain": TemplateSpec(VerifyChainParams, read_only=True, idempotent=True),
    "inspect_ccs": TemplateSpec(
        InspectCcsParams,
        read_only=True,
        idempotent=True,
        secret_prompts=(("password", "password", "Private-key password of the CCS PFX files"),),
    ),
    "outbound_tls_test": TemplateSpec(OutboundTlsTestParams, read_only=True, idempotent=True),
    "rebuild_ccs_pfx": TemplateSpec(
        RebuildCcsPfxParams,
        read_only=False,
        idempotent=True,
        secret_prompts=(("password", "password", "Private-key password of the CCS PFX file"),),
    ),
    "restore_ccs_pfx": TemplateSpec(RestoreCcsPfxParams, read_only=False, idempotent=True),
    # Composites (templates/compose.py). apply_plan's idempotence is its actions': render_plan
    # sets it per plan (a plan with a restart is never retried).
    "apply_plan": TemplateSpec(ApplyPlanParams, read_only=False, idempotent=False, composite=True),
    "verify_host": TemplateSpec(VerifyHostParams, read_only=True, idempotent=True, composite=True),
}
