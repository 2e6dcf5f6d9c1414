"""Issue 17 (1)+(2): one row per HTTP.sys entry, handshake (SNI / no SNI) and TLS version, and a
refresh per entry before iisreset, on the ``multi-binding`` simulated scenario (an IP binding,
an SNI binding and a CCS binding on one site; only the SNI entry serves a stale chain), over
the simulated host's real loopback TLS listener."""

from __future__ import annotations

import json

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import observe
from sectigo_chain.run.entries import EntriesReport, entry_probes, verify_entries

SITE = "Default Web Site"
SHOP = "shop.example.test:443"


def _run(host: SimulatedHost, *, climb: bool = True) -> EntriesReport:
    with host.start_tls() as listener:
        return verify_entries(host, SITE, lambda p: listener.address_for(p.entry)[:2],
                              catalog=host.catalog, climb_ladder=climb)  # fmt: skip


def _rows(report: EntriesReport) -> list[tuple[str, str, str | None]]:
    return [(r.probe.entry, r.probe.handshake, r.tls_version) for r in report.rows]


def test_probes_cover_every_entry_and_the_no_sni_handshake() -> None:
    probes = entry_probes(observe(SimulatedHost("multi-binding")), SITE)
    assert [(p.entry, p.kind, p.servername) for p in probes] == [
        ("0.0.0.0:443", "ipport", "www.example.test"),
        ("0.0.0.0:443", "ipport", None),
        (SHOP, "hostnameport", "shop.example.test"),
        ("ccs:8443", "ccs", "ccs.example.test"),
    ]


def test_one_row_per_entry_handshake_and_tls_version_without_climbing() -> None:
    host = SimulatedHost("multi-binding", served_cache_refresh="binding")
    report = _run(host, climb=False)
    assert _rows(report) == [
        ("0.0.0.0:443", "SNI www.example.test", "1.2"),
        ("0.0.0.0:443", "SNI www.example.test", "1.3"),
        ("0.0.0.0:443", "no SNI", "1.2"),
        ("0.0.0.0:443", "no SNI", "1.3"),
        (SHOP, "SNI shop.example.test", "1.2"),
        (SHOP, "SNI shop.example.test", "1.3"),
        ("ccs:8443", "SNI ccs.example.test", None),  # refused: the CCS share is not modelled
    ]
    verdicts = {(r.probe.entry, r.probe.handshake): r.verdict for r in report.rows}
    assert verdicts[("0.0.0.0:443", "no SNI")] == "pass"
    assert verdicts[(SHOP, "SNI shop.example.test")] == "fail"  # its cached short chain
    stale = next(r for r in report.rows if r.probe.entry == SHOP)
    assert len(stale.served) == 2
    assert report.rungs == ()
    assert report.verdict == "fail"


def test_a_stale_single_entry_is_fixed_by_its_own_refresh() -> None:
    host = SimulatedHost("multi-binding", served_cache_refresh="binding")
    report = _run(host)
    assert report.rungs == (f"entry {SHOP}",)  # no iisreset, no HTTP service restart
    assert "restart" not in host.calls
    shop = [r for r in report.rows if r.probe.entry == SHOP]
    assert {(r.initial_verdict, r.verdict, r.fixed_by) for r in shop} == {("fail", "pass", "entry")}
    assert all(len(r.served) == 3 for r in shop)  # leaf, R36, R46 cross-sign
    others = [r for r in report.rows if r.probe.entry == "0.0.0.0:443"]
    assert {(r.verdict, r.fixed_by) for r in others} == {("pass", None)}
    ccs = next(r for r in report.rows if r.probe.kind == "ccs")
    assert ccs.verdict is None
    assert ccs.error
    assert not report.reboot_required  # a refused handshake is reported, never climbed for


@pytest.mark.parametrize("rule", ["iisreset"])
def test_when_the_entry_refresh_does_not_help_iisreset_does_and_the_ladder_says_so(
    rule: str,
) -> None:
    host = SimulatedHost("multi-binding", served_cache_refresh=rule)  # type: ignore[arg-type]
    report = _run(host)
    assert report.rungs == (f"entry {SHOP}", "iisreset")
    shop = [r for r in report.rows if r.probe.entry == SHOP]
    assert {(r.verdict, r.fixed_by) for r in shop} == {("pass", "iisreset")}
    assert "restart" in host.calls


def test_verify_cli_entries_rows_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--target", "sim://multi-binding", "--entries", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass"  # the first binding (*:443) is right
    entries = doc["entries"]
    assert entries["verdict"] == "fail"  # the CCS entry answers nothing in the model
    assert code == 1
    assert entries["rungs"] == [f"entry {SHOP}", "iisreset"]  # default rule: iisreset
    rows = [(r["probe"]["entry"], r["probe"]["servername"], r["tls_version"], r["fixed_by"])
            for r in entries["rows"]]  # fmt: skip
    assert (SHOP, "shop.example.test", "1.3", "iisreset") in rows
    assert ("0.0.0.0:443", None, "1.2", None) in rows  # the no-SNI handshake
    assert ("ccs:8443", "ccs.example.test", None, None) in rows
