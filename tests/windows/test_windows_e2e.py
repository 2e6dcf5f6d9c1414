"""End to end on a real Windows/IIS host (issue 11): stage the broken state with the lab
hierarchy, then plan -> apply -> apply again (no change) -> check over TLS -> verify ->
rollback; and climb the refresh ladder by hand to see which rung changes the served chain.

Skipped (reason printed) unless on Windows or given a WinRM host: see conftest.py. NOT YET RUN:
nothing here has run on Windows when this was written; the workflow
.github/workflows/windows.yml is what runs it.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from windows_env import tls_host

from sectigo_chain.hosts.base import Executor
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.run.verifier import verify
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import LabHierarchy, LabLeaf
from sectigo_chain.tls.fetch import fetch_served_chain
from sectigo_chain.x509.certs import thumbprint

AT = dt.datetime.now(dt.timezone.utc)  # one clock: the leaf is issued at AT and judged at AT
SITE = "Default Web Site"
PORT = 8443
NAME = "windows-ci.example.test"
PFX_PASSWORD = "lab-only-pfx-password"  # a throwaway lab key on a throwaway runner


def _der(cert: Any) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def _run(ex: Executor, name: str, params: dict[str, Any]) -> Any:
    result = ex.run(render(name, params), timeout=300)
    assert result.ok, (name, result.error)
    return result


def _stage(ex: Executor, lab: LabHierarchy, leaf: LabLeaf) -> None:
    """The broken state: lab roots (and the self-signed R46) in LocalMachine\\Root, the
    issuing CA in LocalMachine\\CA, the leaf with its key in LocalMachine\\My, bound to
    *:8443 of the default site, IIS restarted."""
    for cert in (lab.aaa.cert, lab.usertrust_rsa.cert, lab.r46_root.cert):
        _run(ex, "import_certificate", {"der_b64": _der(cert), "store_name": "Root"})
    _run(ex, "import_certificate", {"der_b64": _der(lab.r36.cert), "store_name": "CA"})
    _run(
        ex,
        "import_pfx",
        {
            "pfx_b64": base64.b64encode(leaf.pfx(PFX_PASSWORD)).decode("ascii"),
            "password": PFX_PASSWORD,
            "thumbprint": thumbprint(leaf.cert),
            "store_name": "My",
        },
    )
    _run(
        ex,
        "set_binding",
        {
            "site": SITE,
            "ip": "*",
            "port": PORT,
            "host": "",
            "thumbprint": thumbprint(leaf.cert),
            "store_name": "My",
        },
    )
    _run(ex, "restart", {"mode": "iisreset", "app_pools": []})


def _unstage(ex: Executor, lab: LabHierarchy, leaf: LabLeaf) -> None:
    """Best effort: take every staged thing away again."""
    binding = {"site": SITE, "ip": "*", "port": PORT, "host": ""}
    ex.run(render("remove_binding", binding), timeout=300)
    for cert, store in (
        (leaf.cert, "My"),
        (lab.r36.cert, "CA"),
        (lab.r46_cross, "CA"),
        (lab.r46_root.cert, "Root"),
        (lab.usertrust_rsa.cert, "Root"),
        (lab.aaa.cert, "Root"),
    ):
        params = {
            "thumbprint": thumbprint(cert),
            "store_location": "LocalMachine",
            "store_name": store,
            "physical_store": ".Default",
        }
        ex.run(render("remove_certificate", params), timeout=300)


@pytest.fixture
def staged(executor: Executor) -> Iterator[tuple[LabHierarchy, LabLeaf]]:
    lab = LabHierarchy.create()
    leaf = lab.issue_leaf([NAME], at=AT)
    _stage(executor, lab, leaf)
    try:
        yield lab, leaf
    finally:
        _unstage(executor, lab, leaf)


def _served(kind: str) -> list[str]:
    fetched = fetch_served_chain(tls_host(kind), PORT, servername=NAME, timeout=10)
    return [thumbprint(c) for c in fetched.chain.certificates]


def test_plan_apply_again_check_verify_rollback(
    executor: Executor,
    executor_kind: str,
    staged: tuple[LabHierarchy, LabLeaf],
    tmp_path: Path,
    facts: dict[str, Any],
) -> None:
    lab, _leaf = staged
    record: dict[str, Any] = facts.setdefault(f"e2e_{executor_kind}", {})
    desired = sectigo_fix(site=SITE, catalog=lab.catalog, root_strategy="remove")
    before = observe(executor)
    record["served_before"] = _served(executor_kind)
    first = plan(desired, before, at=AT, catalog=lab.catalog, target=executor.target)
    record["plan"] = [a.template for a in first.actions]
    assert first.actions
    result = apply(
        first, executor, desired=desired, catalog=lab.catalog, journal_dir=tmp_path, at=AT
    )
    assert result.after_plan_empty, str(result.after_plan)
    again = plan(desired, observe(executor), at=AT, catalog=lab.catalog, target=executor.target)
    assert again.empty
    second = apply(again, executor, desired=desired, catalog=lab.catalog, journal_dir=tmp_path)
    assert not second.changed
    served = _served(executor_kind)
    record["served_after_apply"] = served
    assert thumbprint(lab.r46_cross) in served
    report = verify(
        executor,
        desired,
        endpoint=(tls_host(executor_kind), PORT, NAME),
        at=AT,
        catalog=lab.catalog,
    )
    record["verify"] = {"verdict": report.verdict, "fixed_by": report.fixed_by}
    assert report.verdict == "pass", report.notes
    assert result.journal is not None
    undone = rollback(result.journal, executor)
    assert undone.complete
    assert _stores(observe(executor)) == _stores(before)


def _stores(observed: Any) -> list[tuple[str, str, str | None, str]]:
    return sorted(
        (c.store_location, c.store_name, c.physical_store, c.thumbprint)
        for c in observed.certificates
    )


def test_which_refresh_changes_the_served_chain(
    executor: Executor,
    executor_kind: str,
    staged: tuple[LabHierarchy, LabLeaf],
    facts: dict[str, Any],
) -> None:
    """Open question 1 (and 2, for reapply): fix the stores by hand, then climb binding
    reapply -> recycle -> iisreset (-> HTTP service, console only) and record after which
    rung the served chain carries the cross-sign."""
    lab, leaf = staged
    _run(executor, "import_certificate", {"der_b64": _der(lab.r46_cross), "store_name": "CA"})
    _run(
        executor,
        "remove_certificate",
        {
            "thumbprint": thumbprint(lab.r46_root.cert),
            "store_location": "LocalMachine",
            "store_name": "Root",
            "physical_store": ".Default",
        },
    )
    cross = thumbprint(lab.r46_cross)
    ladder: list[dict[str, Any]] = [{"rung": "none", "served": _served(executor_kind)}]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "binding",
            "set_binding",
            {
                "site": SITE,
                "ip": "*",
                "port": PORT,
                "host": "",
                "thumbprint": thumbprint(leaf.cert),
                "store_name": "My",
                "reapply": True,
            },
        ),
        ("recycle", "restart", {"mode": "recycle", "app_pools": ["DefaultAppPool"]}),
        ("iisreset", "restart", {"mode": "iisreset", "app_pools": []}),
    ]
    if executor_kind == "local":
        steps.append(("http_service", "restart", {"mode": "http_service", "app_pools": []}))
    for rung, name, params in steps:
        if cross in ladder[-1]["served"]:
            break
        _run(executor, name, params)
        ladder.append({"rung": rung, "served": _served(executor_kind)})
    changed_by = next((s["rung"] for s in ladder if cross in s["served"]), None)
    facts.setdefault("refresh_ladder", {})[executor_kind] = {
        "steps": ladder,
        "first_rung_serving_the_cross": changed_by,
    }
    assert changed_by is not None, ladder
