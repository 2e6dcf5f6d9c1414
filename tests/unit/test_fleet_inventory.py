"""The fleet inventory: formats, defaults and overrides, validation, secrets by reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.inventory import (
    Inventory,
    host_secrets,
    inventory_schema,
    load_inventory,
    parse_inventory,
)
from sectigo_chain.fleet.rollout import run_fleet

REPO = Path(__file__).resolve().parents[2]

TOML = """
version = 1

[defaults]
site = "Shop"
strategy = "remove_and_disallow"
password_env = "FLEET_WINRM_PW"
profiles = ["legacy", "modern", "android-14"]

[[hosts]]
name = "web01"
target = "winrm://deploy@web01.corp.test:5986"
hostname = "www.example.test"
pfx = "certs/www.pfx"
pfx_password_env = "WWW_PFX_PW"

[[hosts]]
name = "web02"
target = "sim://broken-e46"
site = "Default Web Site"
port = 8443
restart = "recycle"
check = { host = "10.0.0.2", port = 443, servername = "shop.example.test" }

[hosts.sim_faults]
fail_action = 1
"""

YAML = """
version: 1
defaults:
  site: Shop
  strategy: remove_and_disallow
  password_env: FLEET_WINRM_PW
  profiles: [legacy, modern, android-14]
hosts:
  - name: web01
    target: winrm://deploy@web01.corp.test:5986
    hostname: www.example.test
    pfx: certs/www.pfx
    pfx_password_env: WWW_PFX_PW
  - name: web02
    target: sim://broken-e46
    site: Default Web Site
    port: 8443
    restart: recycle
    check: {host: 10.0.0.2, port: 443, servername: shop.example.test}
    sim_faults: {fail_action: 1}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_defaults_overrides_and_builtins_resolve_per_host(tmp_path: Path) -> None:
    inv, folder = load_inventory(_write(tmp_path, "fleet.toml", TOML))
    web01, web02 = inv.resolved(folder)
    assert web01.scheme == "winrm"
    assert web01.site == "Shop"  # from [defaults]
    assert web01.strategy == "remove_and_disallow"
    assert web01.restart == "iisreset"  # built-in default
    assert web01.port == 443
    assert web01.ip == "*"
    assert web01.profiles == ("legacy", "modern", "android-14")
    assert web01.pfx == str(tmp_path.resolve() / "certs" / "www.pfx")  # relative to the file
    assert web01.password_env == "FLEET_WINRM_PW"
    assert web01.sim_faults is None
    assert web02.site == "Default Web Site"  # the host's own value wins
    assert web02.port == 8443
    assert web02.restart == "recycle"
    assert web02.check is not None
    assert (web02.check.host, web02.check.servername) == ("10.0.0.2", "shop.example.test")
    assert web02.sim_faults is not None
    assert web02.sim_faults.fail_action == 1


def test_yaml_and_json_inventories_equal_the_toml_one(tmp_path: Path) -> None:
    from_toml, _ = load_inventory(_write(tmp_path, "fleet.toml", TOML))
    from_yaml, _ = load_inventory(_write(tmp_path, "fleet.yaml", YAML))
    dumped = json.dumps(from_toml.model_dump(mode="json", exclude_none=True))
    from_json, _ = load_inventory(_write(tmp_path, "fleet.json", dumped))
    assert from_yaml == from_toml
    assert from_json == from_toml


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('name = "web01"', 'name = "web01"\npasword_env = "X"'), "hosts.0 (web01).pasword_env"),
        (('name = "web02"', 'name = "web01"'), "used twice"),
        (("sim://broken-e46", "ftp://web02"), "not a target"),
        (("port = 8443", "port = 70000"), "hosts.1 (web02).port"),
        (('restart = "recycle"', 'restart = "reboot"'), "hosts.1 (web02).restart"),
        (("version = 1", "version = 2"), "version"),
        (('password_env = "FLEET_WINRM_PW"', 'password_env = "not a name"'), "password_env"),
    ],
)
def test_invalid_inventories_say_where(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = TOML.replace(*change, 1)
    assert text != TOML
    with pytest.raises(InputError) as info:
        load_inventory(_write(tmp_path, "fleet.toml", text))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"version": 1, "hosts": [{"name": "a", "target": "sim://fixed", "stie": "x"}]},
         "hosts.0 (a).stie: unknown key (did you mean 'site'?)"),
        ({"version": 1, "hostz": [{"name": "a", "target": "sim://fixed"}]},
         "hostz: unknown key (did you mean 'hosts'?)"),
        ({"version": 1, "defaults": {"sit": "x"}, "hosts": [{"name": "a", "target": "local"}]},
         "defaults.sit: unknown key (did you mean 'site'?)"),
    ],
)  # fmt: skip
def test_a_misspelt_key_is_one_error_naming_the_likely_key(
    document: dict[str, object], expected: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_inventory(document)
    message = str(info.value)
    assert "\n" not in message  # one line (issue 13: bad input is one line)
    problems = message.split("is not a valid inventory: ", 1)[1].split("; ")
    assert problems == [expected]


def test_sim_faults_are_refused_on_a_real_target(tmp_path: Path) -> None:
    text = TOML.replace("sim://broken-e46", "winrm://web02")
    with pytest.raises(InputError, match="sim_faults is only for sim://"):
        load_inventory(_write(tmp_path, "fleet.toml", text))


def test_unreadable_or_unknown_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="not valid TOML"):
        load_inventory(_write(tmp_path, "bad.toml", "hosts = [\n"))
    with pytest.raises(InputError, match=r"name it \.toml"):
        load_inventory(_write(tmp_path, "fleet.ini", TOML))
    with pytest.raises(InputError, match="hosts"):
        parse_inventory({"version": 1, "hosts": []})


def test_secrets_come_from_the_environment_and_never_show(tmp_path: Path) -> None:
    inv, folder = load_inventory(_write(tmp_path, "fleet.toml", TOML))
    web01 = inv.resolved(folder)[0]
    env = {"FLEET_WINRM_PW": "winrm-Secret-1", "WWW_PFX_PW": "pfx-Secret-2"}
    secrets = host_secrets(web01, env)
    assert secrets.winrm_password is not None
    assert secrets.winrm_password.get_secret_value() == "winrm-Secret-1"
    assert secrets.pfx_password is not None
    assert "winrm-Secret-1" not in repr(secrets)
    assert "pfx-Secret-2" not in repr(secrets)
    with pytest.raises(InputError) as info:
        host_secrets(web01, {"FLEET_WINRM_PW": "x"})
    assert "host web01" in str(info.value)
    assert "WWW_PFX_PW" in str(info.value)


def test_a_missing_variable_stops_the_run_before_any_host_is_touched(tmp_path: Path) -> None:
    inv = Inventory.model_validate(
        {"hosts": [
            {"name": "a", "target": "sim://broken-r46"},
            {"name": "b", "target": "winrm://b.corp.test", "password_env": "NOT_SET_ANYWHERE"},
        ]}
    )  # fmt: skip
    opened: list[str] = []

    def factory(host: object, secrets: object) -> object:
        opened.append(str(host))
        raise AssertionError("no host may be opened")

    with pytest.raises(InputError) as info:
        run_fleet(inv, "apply", environ={}, executor_factory=factory,  # type: ignore[arg-type]
                  journal_dir=tmp_path)  # fmt: skip
    assert "host b" in str(info.value)
    assert "NOT_SET_ANYWHERE" in str(info.value)
    assert opened == []


def test_an_unknown_scenario_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    inv = Inventory.model_validate({"hosts": [{"name": "a", "target": "sim://no-such"}]})
    with pytest.raises(InputError, match="unknown simulated scenario 'no-such'"):
        run_fleet(inv, "plan")


def test_the_published_schema_is_the_generated_one() -> None:
    published = json.loads((REPO / "docs" / "inventory.schema.json").read_text(encoding="utf-8"))
    assert published == inventory_schema()
    assert published["additionalProperties"] is False
    assert "hosts" in published["required"]


def test_the_example_in_docs_fleet_md_is_a_valid_inventory(tmp_path: Path) -> None:
    text = (REPO / "docs" / "fleet.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    inv, folder = load_inventory(_write(tmp_path, "fleet.toml", example))
    names = [h.name for h in inv.resolved(folder)]
    assert names == ["web01", "web02", "rehearsal"]
    assert inv.resolved(folder)[1].restart == "recycle"
