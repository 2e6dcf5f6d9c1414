"""``catalog_from_pem`` and ``SECTIGO_CHAIN_CATALOG``: a test PKI standing in for Sectigo's."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.hosts.targets import catalog_for
from sectigo_chain.testing.lab import LabHierarchy
from sectigo_chain.x509.catalog import catalog_from_pem, default_catalog


def _pem(lab: LabHierarchy, *ids: str) -> bytes:
    chosen = ids or tuple(e.id for e in lab.catalog.entries)
    return b"".join(lab.catalog.certificate(i).public_bytes(Encoding.PEM) for i in chosen)


def test_each_certificate_takes_the_id_of_the_sectigo_one_it_stands_for(
    lab: LabHierarchy, tmp_path: Path
) -> None:
    path = tmp_path / "lab.pem"
    path.write_bytes(_pem(lab))
    catalog = catalog_from_pem(path)
    assert {e.id: e.sha256 for e in catalog.entries} == {
        e.id: e.sha256 for e in lab.catalog.entries
    }
    assert catalog.identify(lab.r46_cross).role == "cross_signed_root"  # type: ignore[union-attr]
    assert catalog.identify(lab.r46_root.cert).role == "self_signed_root"  # type: ignore[union-attr]
    assert catalog_from_pem(str(path)) is catalog  # one catalog per file version


def test_a_certificate_that_stands_for_nothing_is_refused(
    lab: LabHierarchy, tmp_path: Path
) -> None:
    leaf = lab.issue_leaf(("www.example.test",)).cert
    path = tmp_path / "mixed.pem"
    path.write_bytes(_pem(lab, "ca-dv-r36") + leaf.public_bytes(Encoding.PEM))
    with pytest.raises(InputError, match="stands for no Sectigo CA certificate"):
        catalog_from_pem(path)


def test_two_stand_ins_for_one_certificate_are_refused(lab: LabHierarchy, tmp_path: Path) -> None:
    path = tmp_path / "twice.pem"
    path.write_bytes(_pem(lab, "ca-dv-r36", "ca-dv-r36"))
    with pytest.raises(InputError, match="two certificates stand for ca-dv-r36"):
        catalog_from_pem(path)


def test_no_certificate_or_no_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no PEM certificate"):
        catalog_from_pem(empty)
    with pytest.raises(InputError, match="cannot read the catalog file"):
        catalog_from_pem(tmp_path / "missing.pem")


class _Remote:
    """An executor that knows no catalog of its own (as WinRMExecutor)."""

    target = "winrm://somewhere"


# Sets an environment variable; threads left by earlier tests may be waiting (see the marker).
@pytest.mark.environ_race
def test_the_environment_variable_chooses_the_catalog_of_non_simulated_hosts(
    lab: LabHierarchy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lab.pem"
    path.write_bytes(_pem(lab))
    monkeypatch.delenv("SECTIGO_CHAIN_CATALOG", raising=False)
    assert catalog_for(_Remote()) is default_catalog()  # type: ignore[arg-type]
    monkeypatch.setenv("SECTIGO_CHAIN_CATALOG", str(path))
    assert catalog_for(_Remote()) is catalog_from_pem(path)  # type: ignore[arg-type]
    sim = SimulatedHost("broken-r46")
    assert catalog_for(sim) is sim.catalog  # a simulated host keeps its own
