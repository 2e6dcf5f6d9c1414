"""``inspect``: what is this certificate file, and where does each certificate belong?"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from pydantic import BaseModel, ConfigDict

from sectigo_chain.display.richrepr import RichRepr
from sectigo_chain.logs import escape_controls
from sectigo_chain.x509.catalog import Catalog, CrossSignAnswer, cross_sign_for, default_catalog
from sectigo_chain.x509.certs import CertInfo, cert_info
from sectigo_chain.x509.load import load_file
from sectigo_chain.x509.pfx import PfxProtection

__all__ = ["CertificateReport", "FileReport", "inspect_certificates", "inspect_file"]


class CatalogRef(BaseModel):
    """The catalog's word on a certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    role: str
    store: str
    remove_for_iis_fix: bool
    note: str


class CrossSignRef(BaseModel):
    """The cross-sign a leaf needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    thumbprint: str | None
    sha256: str
    guessed: bool
    method: str


class CertificateReport(BaseModel):
    """One certificate: facts, catalog role and (for a leaf) the cross-sign it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    info: CertInfo
    catalog: CatalogRef | None
    needs_cross_sign: CrossSignRef | None
    cross_sign: str | None  # the explanation, for leaves

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/cli.md)."""
        i = self.info
        key: dict[str, Any] = {"type": i.key.type}
        if i.key.type == "EC":
            key["curve"] = i.key.curve
        else:
            key["size"] = i.key.size
        return {
            "subject": i.subject,
            "issuer": i.issuer,
            "thumbprint": i.thumbprint,
            "sha256": i.sha256,
            "serial": i.serial,
            "key": key,
            "self_signed": i.self_signed,
            "is_ca": i.is_ca,
            "ski": i.ski,
            "aki": i.aki,
            "not_before": i.not_before.isoformat(),
            "not_after": i.not_after.isoformat(),
            "dns_names": list(i.dns_names),
            "catalog": (
                {
                    "name": self.catalog.name,
                    "role": self.catalog.role,
                    "store": self.catalog.store,
                    "remove_for_iis_fix": self.catalog.remove_for_iis_fix,
                }
                if self.catalog
                else None
            ),
            "needs_cross_sign": (
                {
                    "name": self.needs_cross_sign.name,
                    "thumbprint": self.needs_cross_sign.thumbprint,
                    "sha256": self.needs_cross_sign.sha256,
                    "guessed": self.needs_cross_sign.guessed,
                }
                if self.needs_cross_sign
                else None
            ),
            "cross_sign_explanation": self.cross_sign,
        }

    def __str__(self) -> str:
        i = self.info
        lines = [
            f"  {i.subject_cn}",
            f"    subject     {i.subject}",
            f"    issuer      {i.issuer}",
            f"    thumbprint  {i.thumbprint}",
            f"    sha256      {i.sha256}",
            f"    key         {i.key}   signature {i.signature_algorithm}",
            f"    valid       {i.not_before:%Y-%m-%d} .. {i.not_after:%Y-%m-%d}",
            f"    kind        {'CA' if i.is_ca else 'end-entity'}"
            f"{', self-signed' if i.self_signed else ''}",
        ]
        if i.dns_names:
            lines.append(f"    dns names   {', '.join(i.dns_names)}")
        if self.catalog:
            lines.append(f"    catalog     {self.catalog.name} [{self.catalog.role}]")
            lines.append(f"    belongs in  {self.catalog.store}")
            if self.catalog.note:
                lines.append(f"    note        {self.catalog.note}")
        elif i.is_ca:
            lines.append("    catalog     not a known Sectigo CA")
        if self.cross_sign:
            lines.append(f"    cross-sign  {self.cross_sign}")
        return "\n".join(escape_controls(line) for line in lines)  # names cannot forge lines


class FileReport(RichRepr, BaseModel):
    """Everything ``inspect`` says about one file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    format: str
    has_private_key: bool
    pfx_protection: PfxProtection | None
    certificates: tuple[CertificateReport, ...]

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (docs/cli.md)."""
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "has_private_key": self.has_private_key,
            "certificates": [c.to_json() for c in self.certificates],
        }
        if self.pfx_protection is not None:
            p = self.pfx_protection
            out["pfx_protection"] = {
                "kind": p.kind,
                "mac_algorithm": p.mac_algorithm,
                "algorithms": list(p.algorithms),
                "legacy_compatible": p.legacy_compatible,
            }
        return out

    def __str__(self) -> str:
        head = f"{self.path}: {self.format}, {len(self.certificates)} certificate(s)"
        if self.has_private_key:
            head += ", with private key"
        lines = [escape_controls(head)]
        if self.pfx_protection is not None:
            p = self.pfx_protection
            lines.append(f"  PFX protection: {p}")
            if not p.legacy_compatible:
                lines.append(
                    "  warning: Windows Server 2016 before build 1709 and older cannot import "
                    "this PFX; re-encode it with sectigo_chain.x509.certs.to_legacy_pfx"
                )
        lines.extend(str(c) for c in self.certificates)
        return "\n".join(lines)


def _report(
    cert: x509.Certificate, others: Sequence[x509.Certificate], catalog: Catalog
) -> CertificateReport:
    info = cert_info(cert)
    entry = catalog.identify(cert)
    cat_ref = (
        CatalogRef(
            id=entry.id,
            name=entry.name,
            role=entry.role,
            store=entry.store,
            remove_for_iis_fix=entry.remove_for_iis_fix,
            note=entry.note,
        )
        if entry
        else None
    )
    needs: CrossSignRef | None = None
    explanation: str | None = None
    if not info.is_ca:
        answer: CrossSignAnswer = cross_sign_for([cert, *others], catalog)
        explanation = answer.explanation
        if answer.cross_sign is not None:
            needs = CrossSignRef(
                name=answer.cross_sign.name,
                thumbprint=answer.cross_sign.thumbprint,
                sha256=answer.cross_sign.sha256,
                guessed=answer.guessed,
                method=answer.method,
            )
    return CertificateReport(
        info=info, catalog=cat_ref, needs_cross_sign=needs, cross_sign=explanation
    )


def inspect_certificates(
    certificates: Sequence[x509.Certificate], *, catalog: Catalog | None = None
) -> list[CertificateReport]:
    """Reports for certificates already loaded (the others serve as a leaf's chain)."""
    cat = catalog or default_catalog()
    return [_report(c, [o for o in certificates if o is not c], cat) for c in certificates]


def inspect_file(
    path: str | os.PathLike[str],
    password: str | bytes | None = None,
    *,
    catalog: Catalog | None = None,
) -> FileReport:
    """Load ``path`` and describe each certificate; raises CertificateLoadError on bad input."""
    loaded = load_file(path, password)
    return FileReport(
        path=str(path),
        format=loaded.format,
        has_private_key=loaded.key is not None,
        pfx_protection=loaded.pfx_protection,
        certificates=tuple(inspect_certificates(loaded.certificates, catalog=catalog)),
    )
