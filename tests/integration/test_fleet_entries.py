"""Issue 17 (1)+(2) in ``fleet``: the verify step of every host checks each HTTP.sys entry of its
site (IP:port with and without SNI, host:port) per TLS version and refreshes a stale single entry
on its own before ``iisreset``; the rows reach the JSON and HTML reports.

Every host is a real ``SimulatedHost`` (``multi-binding``, with the CCS binding taken out so
that only the IP and SNI entries remain) behind a real loopback TLS listener."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sectigo_chain.cli.main import main
from sectigo_chain.fleet.inventory import HostSecrets, Inventory, ResolvedHost
from sectigo_chain.fleet.report import FleetReport
from sectigo_chain.fleet.rollout import run_fleet
from sectigo_chain.hosts.base import Executor
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost

FAST = RetryPolicy(attempts=2, wait_initial=0)
SITE = "Default Web Site"
SHOP = "shop.example.test:443"
STALE = "web1"  # the one host whose SNI entry still serves its cached short chain


def _inv(names: list[str]) -> Inventory:
    hosts = [{"name": n, "target": "sim://multi-binding", "site": SITE} for n in names]
    return Inventory.model_validate({"hosts": hosts})


def _factory(made: dict[str, SimulatedHost], rule: str = "binding") -> Any:
    def make(host: ResolvedHost, secrets: HostSecrets) -> Executor:
        sim = SimulatedHost("multi-binding", served_cache_refresh=rule)  # type: ignore[arg-type]
        site = sim.model.sites[SITE]
        site.bindings = [b for b in site.bindings if not b.ssl_flags & 2]  # no CCS entry
        sim.model.drop_unused_sslcert()
        if host.name != STALE:
            sim.model.served_cache.pop(SHOP)  # this host's SNI entry is fresh
        made[host.name] = sim
        return sim

    return make


def _apply(tmp_path: Path, made: dict[str, SimulatedHost], **kw: Any) -> FleetReport:
    return run_fleet(
        _inv(["web0", STALE, "web2"]), "apply", executor_factory=_factory(made, **kw),
        journal_dir=tmp_path, retry=FAST, climb_ladder=True, entries=True, concurrency=1,
    )  # fmt: skip


def test_fleet_verify_carries_one_row_per_entry_handshake_and_tls_version(tmp_path: Path) -> None:
    made: dict[str, SimulatedHost] = {}
    report = _apply(tmp_path, made)
    assert [r.status for r in report.hosts] == ["unchanged"] * 3
    for row in report.hosts:
        keys = [(e.entry, e.handshake, e.tls_version) for e in row.entries]
        assert keys == [
            ("0.0.0.0:443", "SNI www.example.test", "1.2"),
            ("0.0.0.0:443", "SNI www.example.test", "1.3"),
            ("0.0.0.0:443", "no SNI", "1.2"),
            ("0.0.0.0:443", "no SNI", "1.3"),
            (SHOP, "SNI shop.example.test", "1.2"),
            (SHOP, "SNI shop.example.test", "1.3"),
        ]
        assert all(e.verdict == "pass" and len(e.served) == 3 for e in row.entries)


def test_a_stale_single_entry_is_fixed_by_its_own_refresh_on_that_host_only(
    tmp_path: Path,
) -> None:
    made: dict[str, SimulatedHost] = {}
    report = _apply(tmp_path, made)
    stale = report.host(STALE)
    assert stale.entry_rungs == (f"entry {SHOP}",)
    shop = [e for e in stale.entries if e.entry == SHOP]
    assert {(e.initial_verdict, e.verdict, e.fixed_by) for e in shop} == {("fail", "pass", "entry")}
    assert {e.fixed_by for e in stale.entries if e.entry != SHOP} == {None}
    assert "restart" not in made[STALE].calls  # no iisreset: the entry refresh was enough
    assert "set_binding" in made[STALE].calls
    for name in ("web0", "web2"):
        assert report.host(name).entry_rungs == ()
        assert "set_binding" not in made[name].calls
    # the JSON report and its reload carry the rows
    doc = json.loads(json.dumps(report.to_json()))
    rows = next(h for h in doc["hosts"] if h["name"] == STALE)["entries"]
    assert {(r["entry"], r["fixed_by"]) for r in rows if r["entry"] == SHOP} == {(SHOP, "entry")}
    path = report.write(tmp_path / "report.json")
    assert FleetReport.load(path).host(STALE).entries == stale.entries
    html = report.to_html()
    assert f"entry {SHOP}" in html  # the rung
    assert "shop.example.test:443 SNI shop.example.test TLS 1.3: pass (fixed by entry)" in html


def test_when_the_entry_refresh_does_not_help_iisreset_does_and_the_row_says_so(
    tmp_path: Path,
) -> None:
    made: dict[str, SimulatedHost] = {}
    report = _apply(tmp_path, made, rule="iisreset")
    stale = report.host(STALE)
    assert stale.status == "unchanged"
    assert stale.entry_rungs == (f"entry {SHOP}", "iisreset")
    assert {e.fixed_by for e in stale.entries if e.entry == SHOP} == {"iisreset"}
    assert "restart" in made[STALE].calls


def test_fleet_check_reports_the_stale_entry_and_changes_nothing() -> None:
    made: dict[str, SimulatedHost] = {}
    report = run_fleet(_inv(["web0", STALE]), "check", executor_factory=_factory(made),
                       retry=FAST, entries=True)  # fmt: skip
    assert report.host("web0").status == "checked"
    stale = report.host(STALE)
    assert stale.status == "failed"  # the first binding passes; its SNI entry does not
    assert stale.before is not None
    assert stale.before.verdict == "pass"
    assert stale.entry_rungs == ()
    assert any(SHOP in n for n in stale.verify_notes)
    assert all(set(h.calls) <= {"observe"} for h in made.values())


def test_fleet_cli_entries_flag(tmp_path: Path, capsys: Any) -> None:
    inv = tmp_path / "fleet.toml"
    inv.write_text(
        'version = 1\n[[hosts]]\nname = "m"\ntarget = "sim://multi-binding"\n'
        'site = "Default Web Site"\n',
        encoding="utf-8",
    )
    code = main(["fleet", "check", str(inv), "--entries", "--json"])
    doc = json.loads(capsys.readouterr().out)
    row = doc["hosts"][0]
    handshakes = {(e["entry"], e["handshake"]) for e in row["entries"]}
    assert ("0.0.0.0:443", "no SNI") in handshakes
    assert ("ccs:8443", "SNI ccs.example.test") in handshakes
    assert row["status"] == "failed"  # the stale SNI entry (and the CCS entry, no share)
    assert code == 1
