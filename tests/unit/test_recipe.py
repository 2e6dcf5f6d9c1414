"""recipe.sectigo_fix encodes the manual procedure as a DesiredState."""

from __future__ import annotations

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.testing.lab import default_lab
from sectigo_chain.x509.certs import thumbprint
from sectigo_chain.x509.load import load_bytes
from sectigo_chain.x509.pfx import read_pfx_protection

LAB = default_lab()


def test_without_pfx_both_families_are_conditional_on_the_bound_leaf() -> None:
    d = sectigo_fix(site="Default Web Site", catalog=LAB.catalog)
    by = {(s.when_root, s.role, s.ensure, s.store): s for s in d.certificates}
    assert set(by) == {
        ("R46", "cross_sign", "present", "LocalMachine\\CA"),
        ("R46", "self_signed_root", "absent", "LocalMachine\\Root"),
        ("E46", "cross_sign", "present", "LocalMachine\\CA"),
        ("E46", "self_signed_root", "absent", "LocalMachine\\Root"),
    }
    assert by[("R46", "cross_sign", "present", "LocalMachine\\CA")].thumbprint == thumbprint(
        LAB.r46_cross
    )
    assert by[("R46", "cross_sign", "present", "LocalMachine\\CA")].exclusive
    assert by[("R46", "self_signed_root", "absent", "LocalMachine\\Root")].thumbprint == (
        thumbprint(LAB.r46_root.cert)
    )
    (b,) = d.bindings
    assert (b.site, b.ip, b.port, b.host, b.sni, b.thumbprint, b.pfx) == (
        "Default Web Site", "*", 443, "", False, None, None,
    )  # fmt: skip
    assert d.restart == "iisreset"
    assert d.root_strategy == "remove"


@pytest.mark.parametrize("family", ["RSA", "ECC"])
def test_with_pfx_the_right_cross_sign_only(family: str) -> None:
    leaf = LAB.issue_leaf(["a.example.test"], family=family)  # type: ignore[arg-type]
    d = sectigo_fix(
        site="S", hostname="a.example.test", pfx=leaf.pfx("pw"), pfx_password="pw",
        catalog=LAB.catalog,
    )  # fmt: skip
    want = LAB.cross(family)  # type: ignore[arg-type]
    (cross,) = [s for s in d.certificates if s.role == "cross_sign"]
    assert cross.thumbprint == thumbprint(want)
    assert cross.when_root is None
    (b,) = d.bindings
    assert b.sni
    assert b.host == "a.example.test"
    assert b.thumbprint == thumbprint(leaf.cert)
    assert b.pfx_protection == "legacy"
    assert b.legacy_pfx is None


def test_an_aes_pfx_gets_a_legacy_copy_that_windows_2016_can_import() -> None:
    leaf = LAB.issue_leaf(["b.example.test"])
    aes = leaf.pfx("pw", legacy=False)
    assert not read_pfx_protection(aes).legacy_compatible
    d = sectigo_fix(site="S", pfx=aes, pfx_password="pw", catalog=LAB.catalog)
    (b,) = d.bindings
    assert b.pfx_protection == "aes"
    assert b.legacy_pfx is not None
    legacy = b.legacy_pfx.get_secret_value()
    assert read_pfx_protection(legacy).legacy_compatible
    loaded = load_bytes(legacy, password="pw")
    assert thumbprint(loaded.leaf) == thumbprint(leaf.cert)


def test_bad_inputs_are_input_errors() -> None:
    with pytest.raises(InputError, match="SNI needs a host name"):
        sectigo_fix(site="S", sni=True, catalog=LAB.catalog)
    with pytest.raises(InputError, match="strategy"):
        sectigo_fix(site="S", root_strategy="nuke", catalog=LAB.catalog)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cannot read PFX"):
        sectigo_fix(site="S", pfx="/nonexistent/x.pfx", pfx_password="pw", catalog=LAB.catalog)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"port": 99999}, "port"),
        ({"port": 0}, "port"),
        ({"hostname": "a b"}, "host"),
        ({"hostname": "shop.example.test:443"}, "host"),
        ({"hostname": "shop/x"}, "host"),
        ({"ip": "1.2.3"}, "ip"),
        ({"ip": "localhost"}, "ip"),
    ],
)
def test_a_bad_binding_is_one_line_naming_the_field(
    settings: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        sectigo_fix(site="Default Web Site", catalog=LAB.catalog, **settings)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bad binding: {field}: ")


@pytest.mark.parametrize("hostname", ["www.example.test", "*.example.test", "xn--bcher-kva.test"])
def test_host_names_iis_takes_are_accepted(hostname: str) -> None:
    desired = sectigo_fix(site="s", hostname=hostname, catalog=LAB.catalog)
    assert desired.bindings[0].host == hostname
