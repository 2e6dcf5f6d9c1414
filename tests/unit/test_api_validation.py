"""The validation layer of the public API (``sectigo_chain.NAME``): every public function in
``__all__`` answers one plausible wrong argument with an InputError that names the function
and the parameter; the forms people pass are accepted (paths as str or PathLike, passwords as
str or SecretStr); naive datetimes are refused; a simulated host's catalog is found without
being passed."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import sectigo_chain as sc
from sectigo_chain import InputError
from sectigo_chain.testing.lab import default_lab

LAB = default_lab()
AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
NAIVE = dt.datetime(2026, 6, 1, 12, 0)
LEAF = LAB.issue_leaf(["www.example.test"], at=AT)
CHAIN = LAB.served_chain(LEAF, "cross")
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def sim() -> Iterator[dict[str, Any]]:
    host = sc.SimulatedHost("broken-r46")
    desired = sc.sectigo_fix(site="Default Web Site", catalog=host.catalog)
    observed = sc.observe(host)
    the_plan = sc.plan(desired, observed, at=AT, catalog=host.catalog, target=host.target)
    yield {"host": host, "desired": desired, "observed": observed, "plan": the_plan}
    host.close()


# name -> (call with one wrong argument, words the message must hold)
CASES: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "analyze": (lambda s: sc.analyze(CHAIN, at=NAIVE), "analyze(): at is a naive datetime"),
    "apply": (lambda s: sc.apply(s["plan"], "sim://broken-r46"), "apply(): executor must be"),
    "build_paths": (lambda s: sc.build_paths(CHAIN[0], CHAIN[1], []), "pool must be a list"),
    "catalog_for": (lambda s: sc.catalog_for("sim://fixed"), "catalog_for(): executor must"),
    "cert_info": (lambda s: sc.cert_info(PEM), "cert_info(): cert must be a Certificate"),
    "check_endpoint": (lambda s: sc.check_endpoint("https://example.com/"), "looks like a URL"),
    "check_many": (lambda s: sc.check_many("example.com:443"), "check_many(): targets must"),
    "cross_sign_for": (lambda s: sc.cross_sign_for(CHAIN[0], "lab"), "catalog must be a Catalog"),
    "default_catalog": (lambda s: sc.default_catalog("lab"), "default_catalog(): too many"),
    "fetch_many": (lambda s: sc.fetch_many(["h:443"], timeout="5"), "timeout must be a number"),
    "fetch_served_chain": (lambda s: sc.fetch_served_chain("h", "443"), "port must be an int"),
    "identify": (lambda s: sc.identify(PEM), "identify(): cert must be a Certificate"),
    "inspect_file": (lambda s: sc.inspect_file(3), "inspect_file(): path must be"),
    "list_profiles": (lambda s: sc.list_profiles("legacy"), "list_profiles(): too many"),
    "load_bytes": (lambda s: sc.load_bytes(PEM.decode()), "load_bytes(): data must be a bytes"),
    "load_file": (lambda s: sc.load_file(None), "load_file(): path must be"),
    "load_inventory": (lambda s: sc.load_inventory({"hosts": []}), "path must be"),
    "load_profiles": (lambda s: sc.load_profiles("legacy"), "specs must be a list of str"),
    "observe": (lambda s: sc.observe("sim://broken-r46"), "observe(): executor must be"),
    "open_target": (lambda s: sc.open_target("winrm://h", password=b"pw"), "password must be"),
    "plan": (lambda s: sc.plan(s["desired"], s["observed"], at=NAIVE), "naive datetime"),
    "predict_windows_chain": (
        lambda s: sc.predict_windows_chain(CHAIN[0], root=[], ca=CHAIN[1:], at="2026-06-01"),
        "predict_windows_chain(): at must be a datetime",
    ),
    "progress_bar": (lambda s: sc.progress_bar("10"), "progress_bar(): total must be an int"),
    "ps_quote": (lambda s: sc.ps_quote(5), "ps_quote(): value must be a str"),
    "render": (lambda s: sc.render("observe", "site=x"), "render(): params must be"),
    "rollback": (lambda s: sc.rollback("j.json", "sim://x"), "rollback(): executor must be"),
    "run_demo": (lambda s: sc.run_demo(strategy="disable-auto-update"), "strategy must be one"),
    "run_fleet": (lambda s: sc.run_fleet("fleet.toml", "deploy"), "mode must be one of 'plan'"),
    "sectigo_fix": (lambda s: sc.sectigo_fix(site="S", port="443"), "port must be an int"),
    "to_html": (lambda s: sc.to_html(), "to_html(): missing a required argument: 'obj'"),
    "to_legacy_pfx": (
        lambda s: sc.to_legacy_pfx(LEAF.key, LEAF.cert, None),
        "to_legacy_pfx(): password must be a str or a bytes",
    ),
    "to_markdown": (lambda s: sc.to_markdown(), "to_markdown(): missing a required argument"),
    "to_standalone": (lambda s: sc.to_standalone("observe"), "script must be a RenderedScript"),
    "to_text": (lambda s: sc.to_text(s["plan"], color="yes"), "to_text(): color must be a bool"),
    "validate": (lambda s: sc.validate(CHAIN, "legacy", at=AT), "profile must be a Profile"),
    "validate_many": (
        lambda s: sc.validate_many(CHAIN, ["legacy"], at=AT),
        "profiles must be a list of Profile",
    ),
    "review": (lambda s: sc.review("j.json", at=AT), "review(): journals must be a list"),
    "verify": (lambda s: sc.verify(s["host"], s["desired"], at="now"), "at must be a datetime"),
    "verify_entries": (
        lambda s: sc.verify_entries(s["host"], "Default Web Site", ("127.0.0.1", 443)),
        "verify_entries(): address must be a Callable",
    ),
}


def test_every_public_function_has_a_case() -> None:
    functions = {
        name
        for name in sc.__all__
        if callable(getattr(sc, name)) and not isinstance(getattr(sc, name), type)
    }
    assert functions == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_plausible_wrong_argument_is_one_clear_input_error(
    name: str, sim: dict[str, Any]
) -> None:
    call, words = CASES[name]
    with pytest.raises(InputError) as raised:
        call(sim)
    assert words in str(raised.value)
    assert "Traceback" not in str(raised.value)


@pytest.mark.parametrize("at", [NAIVE, "2026-06-01T12:00:00Z", 1780000000])
def test_plan_takes_aware_datetimes_only(at: Any, sim: dict[str, Any]) -> None:
    with pytest.raises(InputError, match=r"plan\(\): at "):
        sc.plan(sim["desired"], sim["observed"], at=at)


def test_paths_as_str_or_pathlike_and_apply_creates_nothing_odd(tmp_path: Path) -> None:
    host = sc.SimulatedHost("broken-r46")
    desired = sc.sectigo_fix(site="Default Web Site", catalog=host.catalog)
    the_plan = sc.plan(desired, sc.observe(host), at=AT, target=host.target)
    result = sc.apply(the_plan, host, desired=desired, journal_dir=str(tmp_path), at=AT)
    assert result.journal is not None
    assert Path(result.journal).parent == tmp_path
    report, folder = sc.load_inventory(_inventory(tmp_path))
    assert folder == tmp_path
    assert [h.name for h in report.hosts] == ["a"]


def _inventory(folder: Path) -> str:
    path = folder / "fleet.toml"
    path.write_text('version = 1\n[[hosts]]\nname = "a"\ntarget = "sim://fixed"\n')
    return str(path)


def test_passwords_as_str_or_secretstr() -> None:
    for password in ("hunter2", SecretStr("hunter2")):
        executor = sc.open_target("winrm://admin@h.example.test", password=password)
        assert "hunter2" not in repr(executor)
        executor.close()


def test_a_simulated_hosts_catalog_is_found_without_being_passed(sim: dict[str, Any]) -> None:
    host, desired, observed = sim["host"], sim["desired"], sim["observed"]
    by_target = sc.plan(desired, observed, at=AT, target=host.target)
    by_certificates = sc.plan(desired, observed, at=AT)
    assert by_target == sim["plan"]
    assert by_certificates.actions == sim["plan"].actions
    # a desired state built from the packaged catalog would plan the real Sectigo cross-sign
    # for the lab host: one clear error instead of another plan
    packaged = sc.sectigo_fix(site="Default Web Site")
    with pytest.raises(InputError, match="another CA catalog"):
        sc.plan(packaged, observed, at=AT, target=host.target)


def test_progress_bar_file_is_still_any_stream() -> None:
    assert sc.progress_bar(3, file=io.StringIO())(1, 3, "h", "s") is None


@pytest.mark.parametrize("wrong", [b"Hunter2-secret", ["Hunter2-secret"], {"pw": "Hunter2-secret"}])
def test_a_wrongly_typed_password_is_never_shown(wrong: object, tmp_path: Path) -> None:
    """A password of the wrong type is still a password: the error names its type only."""
    for call in (
        lambda: sc.open_target("winrm://admin@h", password=wrong),
        lambda: sc.sectigo_fix(site="s", pfx=tmp_path / "x.pfx", pfx_password=wrong),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert "Hunter2" not in str(caught.value)
        assert "value not shown" in str(caught.value)
