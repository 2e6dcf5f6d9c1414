"""The manual R46/E46 fix procedure for IIS, as a function returning a :class:`DesiredState`.

The procedure (Sectigo's and Microsoft's guidance, see docs/concepts.md):

1. Import the right cross-sign (R46 by USERTrust RSA for an RSA hierarchy, E46 by USERTrust ECC
   for ECC) into the Local Computer's Intermediate store (``LocalMachine\\CA``), never Root,
   never Current User.
2. Remove the SELF-SIGNED R46/E46 (the copy that issued itself, never the cross) from
   ``LocalMachine\\Root``; the strategy says how (remove / remove and disallow / also disable
   Automatic Root Update / keep).
3. Remove copies of the cross-sign in the wrong place (Root, CurrentUser, My) and duplicates.
4. With a PFX: import it into ``LocalMachine\\My`` (machine key set) and bind it (https, IP,
   port, SNI), but do not rebind unless the certificate changed. Without a PFX the fix is for the
   certificate already bound; if its key sits only in ``CurrentUser\\My`` it is moved to
   ``LocalMachine\\My`` with its key, in memory on the host.
5. Restart (``iisreset``) or recycle the app pool so HTTP.sys rebuilds the served chain.

An AES-protected PFX is also re-encoded with legacy 3DES/SHA-1 protection here
(:func:`sectigo_chain.x509.certs.to_legacy_pfx`); the plan imports that copy on hosts older than
Server 2016 version 1709 (build 16299), which cannot import AES PFX files.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from pydantic import SecretBytes, SecretStr, ValidationError

from sectigo_chain.errors import InputError
from sectigo_chain.state.models import (
    BindingSpec,
    CertificateSpec,
    DesiredState,
    RestartMode,
    RootStrategy,
)
from sectigo_chain.x509.catalog import Catalog, cross_sign_for, default_catalog
from sectigo_chain.x509.certs import thumbprint
from sectigo_chain.x509.load import LoadedFile, load_bytes, to_legacy_pfx

__all__ = ["RESTART_MODES", "ROOT_STRATEGIES", "sectigo_fix"]

ROOT_STRATEGIES: tuple[RootStrategy, ...] = (
    "remove",
    "remove_and_disallow",
    "disable_auto_update",
    "keep",
)
RESTART_MODES: tuple[RestartMode, ...] = ("iisreset", "recycle", "none")
_CROSS_ISSUER = {"R46": "USERTrust RSA", "E46": "USERTrust ECC"}


def _der_b64(cert: object) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()  # type: ignore[attr-defined]


def _root_specs(
    root: Literal["R46", "E46"], catalog: Catalog, *, conditional: bool
) -> list[CertificateSpec]:
    cross = catalog.cross_sign(root)
    selfsigned = catalog.self_signed(root)
    if cross.thumbprint is None or selfsigned.thumbprint is None:
        raise InputError(f"the catalog does not ship the {root} certificates the fix needs")
    when = root if conditional else None
    issuer = _CROSS_ISSUER[root]
    specs = [
        CertificateSpec(
            role="cross_sign",
            thumbprint=cross.thumbprint,
            der_b64=_der_b64(catalog.certificate(cross.id)),
            ensure="present",
            store_location="LocalMachine",
            store_name="CA",
            exclusive=True,
            when_root=when,
            friendly_name=cross.name,
            reason=(
                f"{root} cross-signed by {issuer} belongs in LocalMachine\\CA (Intermediate "
                "Certification Authorities), only there"
            ),
        )
    ]
    specs.append(
        CertificateSpec(
            role="self_signed_root",
            thumbprint=selfsigned.thumbprint,
            der_b64=_der_b64(catalog.certificate(selfsigned.id)),
            ensure="absent",
            store_location="LocalMachine",
            store_name="Root",
            when_root=when,
            friendly_name=selfsigned.name,
            reason=(
                f"while the self-signed {root} is a trusted root, Windows serves the "
                f"shortest chain (leaf, issuing CA) and clients without {root} fail"
            ),
        )
    )
    return specs


def _load_pfx(
    pfx: bytes | str | os.PathLike[str], password: str | None
) -> tuple[bytes, LoadedFile]:
    if isinstance(pfx, bytes):
        data, name = pfx, "<pfx>"
    else:
        path = Path(pfx)
        name = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read PFX {name}: {exc.strerror}; check the path") from None
    loaded = load_bytes(data, name=name, password=password)
    if loaded.format != "pkcs12" or loaded.key is None:
        raise InputError(f"{name} is not a PFX with a private key; export it with its key")
    return data, loaded


def sectigo_fix(
    *,
    site: str,
    hostname: str | None = None,
    ip: str = "*",
    port: int = 443,
    sni: bool | None = None,
    pfx: bytes | str | os.PathLike[str] | None = None,
    pfx_password: str | SecretStr | None = None,
    restart: RestartMode = "iisreset",
    root_strategy: RootStrategy = "remove",
    catalog: Catalog | None = None,
) -> DesiredState:
    """The desired state of the manual R46/E46 fix for one IIS site.

    ``sni`` defaults to ``True`` when a ``hostname`` is given. ``catalog`` is the CA catalog
    (the real Sectigo one by default; the lab catalog for simulated hosts).
    """
    cat = catalog or default_catalog()
    if root_strategy not in ROOT_STRATEGIES:
        raise InputError(f"unknown root strategy {root_strategy!r}; use one of {ROOT_STRATEGIES}")
    if restart not in RESTART_MODES:
        raise InputError(f"unknown restart mode {restart!r}; use one of {RESTART_MODES}")
    use_sni = bool(hostname) if sni is None else sni
    if use_sni and not hostname:
        raise InputError("SNI needs a host name: pass hostname (--hostname) or turn SNI off")
    password = (
        pfx_password.get_secret_value() if isinstance(pfx_password, SecretStr) else pfx_password
    )
    binding: dict[str, object] = {
        "site": site,
        "host": hostname or "",
        "ip": ip,
        "port": port,
        "sni": use_sni,
    }
    try:
        BindingSpec.model_validate(binding)  # bad site, host name, IP or port: say so first
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'binding'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise InputError(f"bad binding: {problems}") from None
    if pfx is None:
        certs = _root_specs("R46", cat, conditional=True) + _root_specs(
            "E46", cat, conditional=True
        )
        what = f"the certificate bound to {site!r}"
    else:
        raw, loaded = _load_pfx(pfx, password)
        leaf = loaded.leaf
        answer = cross_sign_for([leaf, *[c for c in loaded.certificates if c is not leaf]], cat)
        if answer.status != "needs_cross_sign" or answer.root is None:
            raise InputError(f"the PFX certificate does not need the R46/E46 fix: {answer}")
        if answer.guessed:
            # A guess never drives a destructive action (issue 19, bug 5).
            raise InputError(
                f"cannot tell which root the PFX certificate chains to ({answer}); export the "
                "PFX with its whole chain (the issuing CA) and try again"
            )
        certs = _root_specs(answer.root, cat, conditional=False)
        protection = loaded.pfx_protection.kind if loaded.pfx_protection else "unknown"
        legacy = None
        if loaded.pfx_protection is not None and not loaded.pfx_protection.legacy_compatible:
            assert loaded.key is not None
            chain = [c for c in loaded.certificates if c is not leaf]
            legacy = SecretBytes(to_legacy_pfx(loaded.key, leaf, password or "", chain=chain))
        binding.update(
            thumbprint=thumbprint(leaf),
            leaf_der_b64=_der_b64(leaf),
            pfx=SecretBytes(raw),
            pfx_password=SecretStr(password or ""),
            pfx_protection=protection,
            legacy_pfx=legacy,
        )
        what = f"certificate {thumbprint(leaf)} from the PFX ({answer.root})"
    return DesiredState(
        certificates=tuple(certs),
        bindings=(BindingSpec.model_validate(binding),),
        restart=restart,
        root_strategy=root_strategy,
        description=f"Sectigo R46/E46 chain fix for site {site!r}, {what}",
    )
