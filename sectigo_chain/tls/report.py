"""What ``check`` reports about one endpoint: :class:`ChainReport` and :class:`CheckFailure`.

A report is data: the served chain (small summaries that keep the DER), what each TLS version
did, the chain findings and one :class:`~sectigo_chain.trust.profiles.ProfileResult` per client
profile. :func:`verdict_for` applies the rule of the ``check`` command: ``fail`` when a
selected profile does not validate or a finding is an error, ``warn`` when only warnings
exist, ``pass`` otherwise (``info`` findings never change the verdict). ``to_json()`` gives the
document ``sectigo-chain check --json`` prints (docs/cli.md); ``str()`` is for terminals.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

from cryptography import x509

from sectigo_chain.display.richrepr import RichRepr
from sectigo_chain.trust.profiles import ProfileResult
from sectigo_chain.x509._record import Record, json_datetime
from sectigo_chain.x509.certs import (
    Encoding,
    cn_of,
    common_name,
    name_texts,
    sha256_hex,
    thumbprint,
)
from sectigo_chain.x509.findings import Finding

__all__ = [
    "CertSummary",
    "ChainReport",
    "CheckFailure",
    "TLSVersionResult",
    "Verdict",
    "verdict_for",
    "worst_verdict",
]

Verdict = Literal["pass", "warn", "fail"]
_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


def verdict_for(findings: Iterable[Finding], profiles: Iterable[ProfileResult]) -> Verdict:
    """``fail`` if any profile is invalid or any finding is an error; ``warn`` if a finding is
    a warning; ``pass`` otherwise."""
    severities = {f.severity for f in findings}
    if "error" in severities or not all(p.valid for p in profiles):
        return "fail"
    return "warn" if "warning" in severities else "pass"


def worst_verdict(verdicts: Iterable[str]) -> str:
    """The worst of ``pass`` < ``warn`` < ``fail`` < ``error`` (``pass`` for none)."""
    return max(verdicts, key=lambda v: _RANK[v], default="pass")


class CertSummary(Record):
    """One served certificate, in wire order. ``der_b64`` keeps the certificate itself."""

    subject: str  # RFC 4514
    issuer: str
    common_name: str
    sha256: str  # upper-case hex
    thumbprint: str  # SHA-1, upper-case hex (what Windows shows)
    not_before: dt.datetime
    not_after: dt.datetime
    der_b64: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertSummary:
        subject, issuer = name_texts(cert)
        return cls(
            subject=subject,
            issuer=issuer,
            common_name=common_name(cert.subject),
            sha256=sha256_hex(cert),
            thumbprint=thumbprint(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            der_b64=base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
        )

    def certificate(self) -> x509.Certificate:
        """The certificate itself (parsed from ``der_b64``)."""
        return x509.load_der_x509_certificate(base64.b64decode(self.der_b64))

    def to_json(self, *, include_der: bool = False) -> dict[str, Any]:
        """``model_dump(mode="json")`` without ``der_b64`` unless asked (written out: four of
        these go into every target of ``check --json``; a test holds it to model_dump)."""
        out = {
            "subject": self.subject,
            "issuer": self.issuer,
            "common_name": self.common_name,
            "sha256": self.sha256,
            "thumbprint": self.thumbprint,
            "not_before": json_datetime(self.not_before),
            "not_after": json_datetime(self.not_after),
        }
        if include_der:
            out["der_b64"] = self.der_b64
        return out


class TLSVersionResult(Record):
    """One TLS version's handshake: whether it worked, the cipher, or the error."""

    ok: bool
    cipher: str | None = None
    error: str | None = None
    chain: tuple[str, ...] = ()  # SHA-256 of each certificate served over this version
    truncated: bool = False  # the server sent more certificates than were kept


class ChainReport(RichRepr, Record):
    """The result of checking one TLS endpoint (see the module docstring for the verdict)."""

    target: str
    host: str
    port: int
    servername: str | None  # the SNI name sent (None: no SNI)
    hostname: str | None  # the name the leaf was checked against (None: taken from the leaf)
    verdict: Verdict
    checked_at: dt.datetime  # the validation time
    duration: float  # seconds from the start of the check to this report
    tls_versions: dict[str, TLSVersionResult]
    served_chain: tuple[CertSummary, ...]
    path_names: tuple[str, ...]  # the issuer-ordered path through the served certificates
    findings: tuple[Finding, ...]
    profiles: dict[str, ProfileResult]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True unless the verdict is ``fail``."""
        return self.verdict != "fail"

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The served certificates, in wire order."""
        return [c.certificate() for c in self.served_chain]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.findings)

    def to_json(self, *, include_der: bool = False) -> dict[str, Any]:
        """The document ``sectigo-chain check --json`` prints (docs/cli.md)."""
        return {
            "target": self.target,
            "host": self.host,
            "port": self.port,
            "servername": self.servername,
            "hostname": self.hostname,
            "verdict": self.verdict,
            "checked_at": self.checked_at.isoformat(),
            "duration": round(self.duration, 4),
            "tls_versions": {v: r.model_dump(mode="json") for v, r in self.tls_versions.items()},
            "served_chain": [c.to_json(include_der=include_der) for c in self.served_chain],
            "path": list(self.path_names),
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "profiles": {name: _profile_json(p) for name, p in self.profiles.items()},
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [f"{self.target}: {self.verdict.upper()}"]
        versions = []
        for version, result in self.tls_versions.items():
            state = f"ok ({result.cipher})" if result.ok else f"failed: {result.error}"
            versions.append(f"TLS {version} {state}")
        lines.append("  " + "; ".join(versions))
        lines.append("  served chain:")
        for i, cert in enumerate(self.served_chain):
            lines.append(
                f"    {i} {cert.common_name}  (issuer {cn_of(cert.issuer)}; "
                f"SHA-1 {cert.thumbprint}; expires {cert.not_after:%Y-%m-%d})"
            )
        lines.append("  findings:" if self.findings else "  findings: none")
        lines += [f"    {f}" for f in self.findings]
        lines.append("  profiles:")
        lines += [f"    {p}" for p in self.profiles.values()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _profile_json(result: ProfileResult) -> dict[str, Any]:
    return {
        "valid": result.valid,
        "anchor": result.anchor,
        "anchor_sha256": result.anchor_sha256,
        "path": list(result.path),
        "reason": result.reason,
        "classification": result.classification,
        "missing_intermediates": list(result.missing_intermediates),
        "hostname": result.hostname,
    }


class CheckFailure(Record):
    """A target that could not be checked (``check_many`` returns it instead of raising).

    ``error`` is the exception class name (``TLSTimeout``, ``TLSConnectError``, ...);
    ``unreachable`` is True for the TLS fetch errors (the CLI's exit code 3).
    """

    target: str
    servername: str | None
    error: str
    message: str
    unreachable: bool = True
    verdict: Literal["error"] = "error"

    @property
    def ok(self) -> bool:
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "servername": self.servername,
            "verdict": self.verdict,
            "error": {"type": self.error, "message": self.message},
        }

    def __str__(self) -> str:
        return f"{self.target}: ERROR {self.error}: {self.message}"
