"""Central Certificate Store PFX files without their intermediates (issue 17, point 6).

A CCS binding (sslFlags bit 2) is served from ``<host>.pfx`` (a wildcard certificate:
``_.<domain>.pfx``) in the CCS share. A PFX that holds only the certificate and its key
(win-acme #1347: "this PFX contains only the new certificate, but not the root and/or
intermediate") leaves the chain to each web server's own stores: a server of the farm without
the R46/E46 cross-sign in its CA store sends the short chain. :func:`ccs_plan` says so for
every CCS binding of the desired sites whose file lacks the issuing CA or the cross-sign, and,
when the desired state asks for it (``rebuild_ccs``), plans ``rebuild_ccs_pfx``: the same PFX
with the missing certificates added, the original copied beside it first
(``<file>.sectigo-backup-<UTC stamp>``; not ``*.pfx``, so IIS does not read it), undone by
copying it back. Decisions are here, in Python; the template only does them.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from sectigo_chain.state.models import DesiredState, ObservedCcsFile, ObservedState
from sectigo_chain.state.plan_models import Action
from sectigo_chain.x509.catalog import Catalog, cross_sign_for
from sectigo_chain.x509.certs import common_name, is_self_signed, signed_by, thumbprint

__all__ = ["backup_path", "ccs_file_names", "ccs_plan", "full_chain_missing"]

_CCS = 2


def _names_for(host: str) -> list[str]:
    """The files IIS looks up for a host name: ``<host>.pfx``, then the wildcard's
    ``_.<domain>.pfx`` (Microsoft, "IIS 8.0 Centralized SSL Certificate Support")."""
    host = host.strip().rstrip(".").lower()
    names = [f"{host}.pfx"]
    if host.count(".") >= 2:
        names.append(f"_.{host.split('.', 1)[1]}.pfx")
    return names


def _ccs_hosts(observed: ObservedState, sites: set[str] | None = None) -> list[tuple[str, str]]:
    """(site, host) of every https CCS binding with a host name (of ``sites`` when given)."""
    out = []
    for site in observed.sites:
        if sites is not None and site.name.lower() not in sites:
            continue
        for b in site.bindings:
            if b.protocol.lower() == "https" and b.ssl_flags & _CCS and b.host:
                out.append((site.name, b.host))
    return out


def ccs_file_names(observed: ObservedState) -> list[str]:
    """Every file name the host's CCS bindings need (empty: no CCS binding, nothing to read)."""
    names = [n for _, host in _ccs_hosts(observed) for n in _names_for(host)]
    return list(dict.fromkeys(names))


def _file_for(observed: ObservedState, host: str) -> ObservedCcsFile | None:
    assert observed.ccs is not None
    found = [observed.ccs.file(n) for n in _names_for(host)]
    present = [f for f in found if f is not None and f.present]
    return present[0] if present else found[0]


def full_chain_missing(
    leaf: x509.Certificate,
    held: list[x509.Certificate],
    pool: list[x509.Certificate],
    catalog: Catalog,
) -> tuple[list[x509.Certificate], str | None]:
    """The certificates a PFX holding ``held`` lacks for the full chain old clients need:
    the issuing CA(s) up to R46/E46 and the R46/E46 cross-sign. ``(missing, problem)``;
    ``problem`` says why it cannot be decided (an issuing CA not found in ``pool``)."""
    answer = cross_sign_for(leaf, catalog)
    if answer.status != "needs_cross_sign" or answer.cross_sign is None or answer.guessed:
        return [], None  # not an R46/E46 certificate (or not known): not this tool's to judge
    wanted: list[x509.Certificate] = []
    current = leaf
    candidates = [*held, *pool, *catalog.certificates()]
    for _ in range(4):
        issuer = next(
            (c for c in candidates
             if c.subject == current.issuer and not is_self_signed(c) and signed_by(current, c)),
            None,
        )  # fmt: skip
        if issuer is None:
            return [], f"the issuer of {common_name(current.subject)} was not found"
        if catalog.root_key_of(issuer) is not None:
            break  # signed by the R46/E46 key itself: the cross-sign comes next
        wanted.append(issuer)
        current = issuer
    wanted.append(catalog.certificate(answer.cross_sign.id))
    have = {thumbprint(c) for c in held}
    return [c for c in wanted if thumbprint(c) not in have], None


def _name(catalog: Catalog, cert: x509.Certificate) -> str:
    entry = catalog.identify(cert)
    return entry.name if entry is not None else common_name(cert.subject)


def _b64(cert: x509.Certificate) -> str:
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding

    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def backup_path(path: str, at: dt.datetime) -> str:
    """Where the original is kept: beside it, not ending in ``.pfx`` (IIS reads *.pfx only)."""
    return f"{path}.sectigo-backup-{at.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}"


def ccs_plan(
    desired: DesiredState, observed: ObservedState, at: dt.datetime, catalog: Catalog
) -> tuple[list[Action], list[str]]:
    """(actions, warnings) for the CCS bindings of the desired sites (see the module
    docstring). Nothing when the CCS was not observed (``observed.ccs`` is None)."""
    if observed.ccs is None:
        return [], []
    sites = {b.site.lower() for b in desired.bindings} or None
    ccs = observed.ccs
    actions: list[Action] = []
    warnings: list[str] = []
    pool = [c.certificate for c in observed.certificates if c.store_name == "CA"]
    for site, host in _ccs_hosts(observed, sites):
        where = f"site {site!r}, CCS binding {host}"
        if ccs.error is not None:
            warnings.append(f"{where}: the Central Certificate Store could not be read "
                            f"({ccs.error})")  # fmt: skip
            continue
        if not ccs.enabled or not ccs.location:
            warnings.append(
                f"{where}: the binding uses the Central Certificate Store, but it is not "
                "enabled on this host (IIS Manager, Centralized Certificates)"
            )
            continue
        f = _file_for(observed, host)
        names = " or ".join(_names_for(host))
        if f is None or not f.present:
            warnings.append(f"{where}: no {names} in {ccs.location}: IIS has nothing to serve")
            continue
        if f.error is not None or f.leaf is None:
            why = f.error or "no certificate with a private key in it"
            warnings.append(
                f"{where}: {f.file} could not be opened ({why}); give the CCS private-key "
                "password (--ccs-password-env) to check which chain it carries"
            )
            continue
        held = [c.certificate for c in f.certificates]
        leaf = f.leaf.certificate
        missing, problem = full_chain_missing(leaf, held, pool, catalog)
        if problem is not None:
            warnings.append(f"{where}: {f.file}: cannot tell its full chain ({problem})")
            continue
        if not missing:
            continue
        lacking = ", ".join(_name(catalog, c) for c in missing)
        text = (
            f"{where}: {f.file} holds the certificate without {lacking} (win-acme #1347): a "
            "server of the farm whose own CA store lacks them sends a short chain"
        )
        if not desired.rebuild_ccs:
            warnings.append(f"{text}; plan with --rebuild-ccs to add them to the PFX (the "
                            "original is kept beside it)")  # fmt: skip
            continue
        if f.sha256 is None or not f.path:
            warnings.append(f"{text}; it cannot be rebuilt (its path or content was not read)")
            continue
        keep = backup_path(f.path, at)
        params = {
            "path": f.path,
            "backup_path": keep,
            "expected_sha256": f.sha256,
            "add_der_b64": [_b64(c) for c in missing],
        }
        secret = {} if desired.ccs_password is None else {"password": desired.ccs_password}
        actions.append(
            Action(
                kind="rebuild_ccs_pfx",
                reason=f"{text}: add {lacking} to {f.path} (the original is copied to {keep})",
                template="rebuild_ccs_pfx",
                params=params,
                secret_params=secret,
                rollback=f"copy {keep} back over {f.path}",
            )
        )
    return actions, warnings
