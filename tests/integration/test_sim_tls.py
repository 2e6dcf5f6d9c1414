"""The simulated host's real TLS listener on 127.0.0.1 (sectigo_chain.hosts.sim.listener).

Every check here is a real handshake with the real ``tls``/``check``/``profiles`` code.
"""

from __future__ import annotations

import pytest

from sectigo_chain.errors import InputError, TLSConnectError, TLSHandshakeError
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.hosts.sim.listener import SimTLSListener
from sectigo_chain.hosts.sim.model import HostModel, SimBinding, SimSite, SslCertEntry
from sectigo_chain.hosts.sim.scenarios import build_scenario, scenario_leaf
from sectigo_chain.templates.render import render
from sectigo_chain.testing.lab import Family, LabHierarchy
from sectigo_chain.tls.check import check_endpoint
from sectigo_chain.tls.fetch import NO_SNI, fetch_served_chain
from sectigo_chain.x509.certs import thumbprint

SITE = "Default Web Site"
PROFILES = ("legacy", "modern", "both")


def _thumbs(certs: list) -> list[str]:  # type: ignore[type-arg]
    return [thumbprint(c) for c in certs]


def test_broken_r46_served_over_tls_fails_legacy_with_short_chain() -> None:
    host = SimulatedHost("broken-r46")
    with host.start_tls() as listener:
        ip, port, name = listener.address_for(SITE)
        report = check_endpoint(ip, port, servername=name, profiles=PROFILES, catalog=host.catalog)
        assert ip == "127.0.0.1"
        assert name == "www.example.test"  # the leaf's name: what a browser sends
        assert report.verdict == "fail"
        assert "SHORT_CHAIN_R46" in report.codes
        assert not report.profiles["legacy"].valid
        assert report.profiles["legacy"].classification == "incomplete_fixable"
        assert report.profiles["modern"].valid
        # exactly what the model serves, in wire order
        assert _thumbs(report.certificates) == _thumbs(host.served_chain(SITE))
        assert len(report.certificates) == 2
        seen = listener.served[-1]
        assert (seen.listener, seen.servername, seen.entry) == (
            "0.0.0.0:443",
            "www.example.test",
            "0.0.0.0:443",
        )


def test_broken_e46_served_over_tls_fails_legacy() -> None:
    host = SimulatedHost("broken-e46")
    with host.start_tls() as listener:
        ip, port, name = listener.address_for(SITE)
        report = check_endpoint(ip, port, servername=name, profiles=PROFILES, catalog=host.catalog)
    assert report.verdict == "fail"
    short = [f for f in report.findings if f.code == "SHORT_CHAIN_R46"]
    assert short
    assert "E46" in short[0].detail
    assert not report.profiles["legacy"].valid
    assert report.profiles["modern"].valid


def test_listener_reads_the_host_again_after_a_restart() -> None:
    """stale-cache: the cached short chain is served until iisreset refreshes the cache."""
    host = SimulatedHost("stale-cache", served_cache_refresh="iisreset")
    with host.start_tls() as listener:
        ip, port, name = listener.address_for(SITE)
        first = fetch_served_chain(ip, port, servername=name, tls_versions=("1.3",))
        assert len(first.chain.certificates) == 2
        result = host.run(render("restart", {"mode": "iisreset"}))
        assert result.ok
        second = fetch_served_chain(ip, port, servername=name, tls_versions=("1.2", "1.3"))
        assert len(second.chain.certificates) == 3
        assert _thumbs(list(second.chain.certificates)) == _thumbs(host.served_chain(SITE))
        report = check_endpoint(ip, port, servername=name, profiles=PROFILES, catalog=host.catalog)
        assert report.verdict == "pass"


def test_no_sni_gets_the_ip_port_entry() -> None:
    host = SimulatedHost("broken-r46")
    with host.start_tls() as listener:
        ip, port, _ = listener.address_for("0.0.0.0:443")
        fetched = fetch_served_chain(ip, port, servername=NO_SNI, tls_versions=("1.3",))
        assert _thumbs(list(fetched.chain.certificates)) == _thumbs(host.served_chain(SITE))
        assert listener.served[-1].servername is None
        assert listener.served[-1].entry == "0.0.0.0:443"


def _two_sni_sites(lab: LabHierarchy, *, keep_default: bool) -> HostModel:
    """broken-r46 plus sites A (RSA leaf) and B (ECC leaf) with SNI bindings on *:443."""
    model = build_scenario("broken-r46", lab)[1]
    model.add("LocalMachine", "CA", lab.issuing_ca("ECC").cert)
    model.add("LocalMachine", "CA", lab.cross("RSA"))
    sites: list[tuple[str, Family, int]] = [
        ("a.example.test", "RSA", 2),
        ("b.example.test", "ECC", 3),
    ]
    for name, family, site_id in sites:
        leaf = scenario_leaf(lab, family, (name,))
        model.add(
            "LocalMachine", "My", leaf.cert, key=leaf.key, key_storage="machine",
            key_exportable=False,
        )  # fmt: skip
        site = name.split(".")[0].upper()
        model.sites[site] = SimSite(
            site, site_id, bindings=[SimBinding("https", "*", 443, name, ssl_flags=1)]
        )
        model.sslcert[f"{name}:443"] = SslCertEntry(
            f"{name}:443", "hostnameport", thumbprint(leaf.cert)
        )
    if not keep_default:
        del model.sites[SITE]
        del model.sslcert["0.0.0.0:443"]
    return model


def test_sni_sites_get_their_own_chains(lab: LabHierarchy) -> None:
    host = SimulatedHost(_two_sni_sites(lab, keep_default=True), lab=lab)
    with host.start_tls() as listener:
        a = listener.address_for("A")
        b = listener.address_for("b")  # site names are case-insensitive, as in IIS
        assert a[2] == "a.example.test"
        assert b[2] == "b.example.test"
        assert a[:2] == b[:2]  # one loopback port stands for *:443
        chain_a = fetch_served_chain(a[0], a[1], servername=a[2], tls_versions=("1.3",))
        chain_b = fetch_served_chain(b[0], b[1], servername="B.EXAMPLE.TEST", tls_versions=("1.3",))
        other = fetch_served_chain(a[0], a[1], servername="c.example.test", tls_versions=("1.3",))
        assert _thumbs(list(chain_a.chain.certificates)) == _thumbs(host.served_chain("A"))
        assert _thumbs(list(chain_b.chain.certificates)) == _thumbs(host.served_chain("B"))
        assert chain_a.chain.certificates[0] != chain_b.chain.certificates[0]
        # an unknown name falls back to the non-SNI 0.0.0.0:443 entry (Default Web Site)
        assert _thumbs(list(other.chain.certificates)) == _thumbs(host.served_chain(SITE))
        entries = [(h.servername, h.entry) for h in listener.served]
        assert ("a.example.test", "a.example.test:443") in entries
        assert ("B.EXAMPLE.TEST", "b.example.test:443") in entries
        assert ("c.example.test", "0.0.0.0:443") in entries
        report = check_endpoint(*a[:2], servername=a[2], profiles=PROFILES, catalog=host.catalog)
        # the name matches (modern validates); the cross-sign in CA does not help while the
        # self-signed R46 is still in Root: the shortest chain wins (KB 2831004)
        assert report.profiles["modern"].valid
        assert report.profiles["modern"].hostname == "a.example.test"
        assert "SHORT_CHAIN_R46" in report.codes


def test_unknown_name_without_a_default_entry_is_refused(lab: LabHierarchy) -> None:
    host = SimulatedHost(_two_sni_sites(lab, keep_default=False), lab=lab)
    with host.start_tls() as listener:
        ip, port, name = listener.address_for("a.example.test:443")
        assert name == "a.example.test"
        fetch_served_chain(ip, port, servername=name, tls_versions=("1.3",))
        with pytest.raises(TLSHandshakeError):
            fetch_served_chain(ip, port, servername="nobody.example.test", tls_versions=("1.3",))
        assert listener.served[-1].entry is None
        assert listener.errors == []


def test_a_host_that_serves_nothing_refuses_handshakes() -> None:
    """user-key: the bound leaf is not in LocalMachine\\My, so HTTP.sys has nothing to send."""
    host = SimulatedHost("user-key")
    with host.start_tls() as listener:
        ip, port, name = listener.address_for(SITE)
        with pytest.raises(TLSHandshakeError):
            fetch_served_chain(ip, port, servername=name, tls_versions=("1.2", "1.3"), timeout=5)


def test_address_for_rejects_unknown_sites_and_endpoints() -> None:
    host = SimulatedHost("broken-r46")
    with host.start_tls() as listener:
        with pytest.raises(InputError, match=r"neither a site nor an HTTP\.sys entry"):
            listener.address_for("No Such Site")
        host.model.sites["Plain"] = SimSite("Plain", 9, bindings=[SimBinding("http")])
        with pytest.raises(InputError, match="no https binding"):
            listener.address_for("Plain")


def test_binds_only_to_loopback() -> None:
    with pytest.raises(InputError, match=r"127\.0\.0\.1 only"):
        SimTLSListener(SimulatedHost("fixed"), bind="0.0.0.0")


def test_host_close_stops_its_listeners() -> None:
    host = SimulatedHost("fixed")
    listener = host.start_tls()
    ip, port, name = listener.address_for(SITE)
    assert fetch_served_chain(ip, port, servername=name, tls_versions=("1.3",)).chain
    host.close()
    with pytest.raises(TLSConnectError):
        fetch_served_chain(ip, port, servername=name, tls_versions=("1.3",), timeout=2)
    host.close()  # idempotent


def test_starting_the_listener_does_not_fill_the_served_cache() -> None:
    """Only a handshake asks HTTP.sys for its chain: starting the listener changes nothing."""
    host = SimulatedHost("broken-r46")
    before = host.snapshot()
    with host.start_tls() as listener:
        listener.address_for(SITE)
        assert host.snapshot() == before
        assert host.model.served_cache == {}
        ip, port, name = listener.address_for(SITE)
        fetch_served_chain(ip, port, servername=name, tls_versions=("1.3",))
        assert list(host.model.served_cache) == ["0.0.0.0:443"]
