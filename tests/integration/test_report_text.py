"""Every report object prints as readable text (``str``), never a raw model dump: no
``Name(field=...)``, no ``field='...'`` pairs, no base64 or DER of a certificate (issue 14)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

import sectigo_chain as sc
from sectigo_chain.run.journal import rollback

DUMP = re.compile(r"\b[a-z_]+=(?:'|\"|\(|\[|<|[A-Z0-9])")
BASE64_CERT = re.compile(r"MII[A-Za-z0-9+/]{40}")


def _objects(tmp_path: Path) -> dict[str, Any]:
    host = sc.SimulatedHost("broken-r46")
    listener = host.start_tls()
    ip, port, name = listener.address_for("Default Web Site")
    leaf = host.served_chain("Default Web Site")[0]
    at = leaf.not_valid_before_utc + dt.timedelta(days=1)
    desired = sc.sectigo_fix(site="Default Web Site", catalog=host.catalog)
    observed = sc.observe(host)
    the_plan = sc.plan(desired, observed, at=at, target=host.target)
    fetched = sc.fetch_served_chain(ip, port, servername=name)
    check = sc.check_endpoint(ip, port, servername=name, catalog=host.catalog, at=at)
    result = sc.apply(the_plan, host, desired=desired, journal_dir=tmp_path, at=at)
    assert result.journal is not None
    undone = rollback(result.journal, host)
    verified = sc.verify(host, desired, at=at, climb_ladder=False)
    inventory_file = tmp_path / "fleet.toml"
    inventory_file.write_text('version = 1\n[[hosts]]\nname = "a"\ntarget = "sim://fixed"\n')
    inventory, _ = sc.load_inventory(inventory_file)
    catalog = sc.default_catalog()
    host.close()
    return {
        "DesiredState": desired, "ObservedState": observed, "Plan": the_plan,
        "Action": the_plan.actions[0], "ApplyResult": result, "RollbackResult": undone,
        "VerifyReport": verified, "FetchResult": fetched, "ServedChain": fetched.chain,
        "ChainReport": check, "ChainAnalysis": sc.analyze(list(fetched.chain.certificates), at=at,
                                                         catalog=host.catalog),
        "ProfileResult": next(iter(check.profiles.values())),
        "Profile": sc.load_profiles(["legacy"])[0], "Inventory": inventory,
        "CatalogEntry": catalog.entries[0],
        "CertInfo": sc.cert_info(leaf), "CrossSignAnswer": sc.cross_sign_for(leaf, host.catalog),
    }  # fmt: skip


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _objects(tmp_path_factory.mktemp("text"))


NAMES = [
    "DesiredState", "ObservedState", "Plan", "Action", "ApplyResult", "RollbackResult",
    "VerifyReport", "FetchResult", "ServedChain", "ChainReport", "ChainAnalysis", "ProfileResult",
    "Profile", "Inventory", "CatalogEntry", "CertInfo", "CrossSignAnswer",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_str_is_readable_text_not_a_model_dump(name: str, objects: dict[str, Any]) -> None:
    obj = objects[name]
    assert obj is not None
    text = str(obj)
    assert text.strip()
    assert not text.startswith(type(obj).__name__ + "("), text[:120]
    assert DUMP.search(text) is None, DUMP.search(text)
    assert BASE64_CERT.search(text) is None
    assert "\\n" not in text  # real line breaks, not escaped ones
