"""Plain views of report objects for :mod:`sectigo_chain.display.render` (no formatting here).

The renderers (text, Markdown, HTML) share these views so that they always say the same thing:
which certificates were served and in which role, and for each client profile the path it
built (or where it broke). Inputs are duck-typed (pydantic models, dicts from ``to_json()``,
plain values) so that a report from any module, or one loaded back from JSON, renders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sectigo_chain.x509.certs import cn_of

__all__ = [
    "SERVED_HEADERS",
    "CertView",
    "ChainRow",
    "ProfileView",
    "Verdict",
    "cert_views",
    "chain_rows",
    "cn_of",
    "field",
    "kind_of",
    "profile_views",
    "served_rows",
    "short_date",
    "verdict_of",
]

Verdict = Literal["pass", "warn", "fail", "neutral"]

# report class name -> renderer key; matched on the class and its bases (no imports needed, so
# display works for modules that are optional or still growing)
_KINDS = {
    "Plan": "plan",
    "ApplyResult": "apply",
    "ChainReport": "chain",
    "CheckFailure": "check_failure",
    "VerifyReport": "verify",
    "FleetReport": "fleet",
    "FileReport": "file",
}


def kind_of(obj: object) -> str | None:
    """The renderer key for ``obj`` (``"plan"``, ``"chain"``, ...) or None when unknown."""
    for cls in type(obj).__mro__:
        kind = _KINDS.get(cls.__name__)
        if kind is not None:
            return kind
    return None


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]`` (for dicts), else ``default``."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


SERVED_HEADERS = ("#", "certificate", "issuer", "expires", "SHA-1")


def served_rows(served: Iterable[Any]) -> list[tuple[Any, ...]]:
    """One row per served certificate (wire order), for :data:`SERVED_HEADERS`."""
    return [
        (
            i,
            field(c, "common_name"),
            cn_of(str(field(c, "issuer", ""))),
            short_date(field(c, "not_after")),
            field(c, "thumbprint"),
        )
        for i, c in enumerate(served)
    ]


def short_date(value: Any) -> str:
    """``YYYY-MM-DD`` for a datetime or an ISO string; ``""`` for None."""
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)[:10] if value else ""


@dataclass(frozen=True)
class CertView:
    """One certificate as a box in the chain picture."""

    common_name: str
    subject: str
    issuer: str
    sha256: str
    thumbprint: str
    not_after: str
    role: str  # leaf, issuing CA, cross-sign, root, trust anchor, not served


def _role(index: int, subject: str, issuer: str, common_name: str) -> str:
    if index == 0:
        return "leaf"
    if subject and subject == issuer:
        return "root"
    if "root" in common_name.lower():
        return "cross-sign"  # a root's name issued by another CA: the cross-signed root
    return "issuing CA"


def cert_views(certs: Iterable[Any]) -> list[CertView]:
    """Views of served certificates in wire order (``CertSummary`` objects or their dicts)."""
    out = []
    for index, cert in enumerate(certs):
        subject = str(field(cert, "subject", "") or "")
        issuer = str(field(cert, "issuer", "") or "")
        cn = str(field(cert, "common_name", "") or cn_of(subject) or "(no name)")
        out.append(
            CertView(
                common_name=cn,
                subject=subject,
                issuer=issuer,
                sha256=str(field(cert, "sha256", "") or "").upper(),
                thumbprint=str(field(cert, "thumbprint", "") or ""),
                not_after=short_date(field(cert, "not_after")),
                role=_role(index, subject, issuer, cn),
            )
        )
    return out


@dataclass(frozen=True)
class ProfileView:
    """One client profile's verdict on the chain."""

    name: str
    verdict: Verdict
    path: tuple[str, ...] = ()  # SHA-256, leaf .. anchor (when known)
    anchor: str | None = None
    reason: str | None = None
    classification: str = ""


_PASS = frozenset({"pass", "ok", "valid", "true", "applied", "fixed", "unchanged", "checked"})
_WARN = frozenset({"warn", "warning", "skipped"})
_FAIL = frozenset(
    {"fail", "failed", "error", "invalid", "false", "unreachable", "rolled_back", "stopped"}
)


def verdict_of(value: Any) -> Verdict:
    """The colour key of a verdict or status (a bool, ``pass``, ``applied``, ``failed``...)."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    text = str(value).lower()
    if text in _PASS:
        return "pass"
    if text in _WARN:
        return "warn"
    if text in _FAIL or text == "incomplete":
        return "fail"
    return "neutral"


def profile_views(profiles: Mapping[str, Any] | Iterable[Any] | None) -> list[ProfileView]:
    """Views of profile verdicts: a mapping name -> ``ProfileResult`` / its dict / bool / word,
    or an iterable of ``ProfileResult`` objects."""
    if not profiles:
        return []
    items: Iterable[tuple[str, Any]]
    if isinstance(profiles, Mapping):
        items = profiles.items()
    else:
        items = ((str(field(p, "profile", "?")), p) for p in profiles)
    out = []
    for name, value in items:
        if isinstance(value, bool | str):
            out.append(ProfileView(name=str(name), verdict=verdict_of(value)))
            continue
        valid = field(value, "valid")
        out.append(
            ProfileView(
                name=str(name),
                verdict=verdict_of(valid if valid is not None else field(value, "verdict")),
                path=tuple(str(s).upper() for s in field(value, "path", ()) or ()),
                anchor=field(value, "anchor"),
                reason=field(value, "reason"),
                classification=str(field(value, "classification", "") or ""),
            )
        )
    return out


@dataclass(frozen=True)
class ChainRow:
    """One row of the chain picture: the boxes a profile's path goes through, and its end."""

    label: str  # the profile name ("" when no profile was given)
    verdict: Verdict
    boxes: tuple[CertView, ...]
    end: str | None  # why the chain stops (failed profiles): classification and reason


def _anchor_view(sha256: str, anchor: str | None) -> CertView:
    name = cn_of(anchor) if anchor else "trust anchor"
    return CertView(name, anchor or "", anchor or "", sha256, "", "", "trust anchor")


def chain_rows(
    certs: Iterable[Any], profiles: Mapping[str, Any] | Iterable[Any] | None
) -> list[ChainRow]:
    """The rows of the chain picture: one per profile (or one neutral row without profiles)."""
    served = cert_views(certs)
    by_sha = {c.sha256: c for c in served}
    views = profile_views(profiles)
    if not views:
        return [ChainRow("", "neutral", tuple(served), None)]
    rows = []
    for view in views:
        if view.path:
            boxes = []
            for i, sha in enumerate(view.path):
                last = i == len(view.path) - 1
                cert = by_sha.get(sha)
                if last:
                    boxes.append(_anchor_view(sha, view.anchor if cert is None else cert.subject))
                elif cert is not None:
                    boxes.append(cert)
                else:
                    boxes.append(CertView("(from the client)", "", "", sha, "", "", "not served"))
            rows.append(ChainRow(view.name, view.verdict, tuple(boxes), None))
            continue
        end = None
        if view.verdict == "fail":
            why = view.reason or "no path to a trusted root"
            end = f"{view.classification}: {why}" if view.classification else why
        rows.append(ChainRow(view.name, view.verdict, tuple(served), end))
    return rows
