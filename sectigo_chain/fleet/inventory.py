"""The fleet inventory: hosts, their targets and settings, credentials by reference.

An inventory is a TOML file (or YAML, when PyYAML is installed; or JSON) that validates against
:class:`Inventory` (``extra="forbid"``: a misspelt key is an error, not a silent default). Its
JSON schema is published as ``docs/inventory.schema.json`` (:func:`inventory_schema`).

Secrets are never stored in an inventory: ``password_env`` (WinRM) and ``pfx_password_env``
name environment variables that hold them, read when a rollout starts (:func:`host_secrets`).
Every host setting can be given once in ``[defaults]`` and overridden per host; a host's
:meth:`Inventory.resolved` view has every setting filled in.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from sectigo_chain.errors import InputError

__all__ = [
    "CheckEndpoint",
    "HostSecrets",
    "HostSettings",
    "Inventory",
    "InventoryHost",
    "ResolvedHost",
    "SimFaults",
    "host_secrets",
    "inventory_schema",
    "load_inventory",
    "parse_inventory",
]

RestartMode = Literal["iisreset", "recycle", "none"]
RootStrategy = Literal["remove", "remove_and_disallow", "disable_auto_update", "keep"]
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HOST_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckEndpoint(_Strict):
    """Where to fetch the served chain from, when not the target host itself."""

    host: str = Field(min_length=1, description="host name or IP address to connect to")
    port: int = Field(443, ge=1, le=65535)
    servername: str | None = Field(
        None, description="SNI name to send (default: the host's hostname setting)"
    )


class SimFaults(_Strict):
    """Faults to inject into a ``sim://`` host (for rehearsals and tests): see ``Faults``."""

    fail_action: int | None = Field(None, ge=0, description="fail the Nth changing script")
    drop_connection_at: int | None = Field(None, ge=0)
    timeout_at: int | None = Field(None, ge=0)
    persistent: bool = False


class HostSettings(_Strict):
    """Settings a host inherits from ``[defaults]`` unless it sets them itself (None: inherit)."""

    site: str | None = Field(None, description='IIS site (default "Default Web Site")')
    hostname: str | None = Field(None, description="host header of the https binding (SNI on)")
    ip: str | None = Field(None, description='binding IP address (default "*")')
    port: int | None = Field(None, ge=1, le=65535, description="binding port (default 443)")
    sni: bool | None = Field(None, description="require SNI (default: on when hostname is set)")
    pfx: str | None = Field(
        None, description="PFX to import and bind; relative paths are relative to the inventory"
    )
    pfx_password_env: str | None = Field(
        None, pattern=_ENV_NAME, description="environment variable holding the PFX password"
    )
    password_env: str | None = Field(
        None, pattern=_ENV_NAME, description="environment variable holding the WinRM password"
    )
    winrm_auth: (
        Literal["negotiate", "ntlm", "kerberos", "basic", "credssp", "certificate"] | None
    ) = None
    winrm_cert_validation: bool | str | None = Field(
        None,
        description="validate the WinRM listener's certificate: true (default), false, or the "
        "path of a CA bundle (PEM) that signed it",
    )
    strategy: RootStrategy | None = Field(None, description='self-signed root strategy ("remove")')
    restart: RestartMode | None = Field(None, description='how to refresh the chain ("iisreset")')
    allow_group_policy: bool | None = Field(
        None, description="plan the rest of the fix even if a Group Policy root stays"
    )
    profiles: tuple[str, ...] | None = Field(
        None, description='client profiles that must validate (default ["legacy", "modern"])'
    )
    timeout: float | None = Field(None, gt=0, description="seconds per script (default 120)")
    check: CheckEndpoint | None = Field(
        None, description="fetch the served chain from here instead of the host itself"
    )
    sim_faults: SimFaults | None = Field(None, description="sim:// targets only: inject faults")
    outbound_url: str | None = Field(
        None,
        pattern=r"^https://",
        description="after a distrust action, test the host's own outbound TLS to this https "
        "URL (e.g. its ACME directory); trusted before and not after rolls the apply back",
    )


class InventoryHost(HostSettings):
    """One host of the fleet: a unique name, a target, and its overrides of ``[defaults]``."""

    name: str = Field(pattern=_HOST_NAME, description="unique name of the host in reports")
    target: str = Field(
        min_length=1, description="sim://SCENARIO, local, or winrm://[user@]host[:port]"
    )

    @model_validator(mode="after")
    def _target_shape(self) -> InventoryHost:
        from sectigo_chain.hosts.targets import parse_target

        scheme, _ = parse_target(self.target)  # InputError (a ValueError) -> ValidationError
        if self.sim_faults is not None and scheme != "sim":
            raise ValueError("sim_faults is only for sim:// targets")
        return self


class ResolvedHost(_Strict):
    """A host with every setting filled in (defaults applied). No secret values."""

    name: str
    target: str
    scheme: Literal["sim", "local", "winrm"]
    site: str
    hostname: str | None
    ip: str
    port: int
    sni: bool | None
    pfx: str | None
    pfx_password_env: str | None
    password_env: str | None
    winrm_auth: str | None
    winrm_cert_validation: bool | str
    strategy: RootStrategy
    restart: RestartMode
    allow_group_policy: bool
    profiles: tuple[str, ...]
    timeout: float
    check: CheckEndpoint | None
    sim_faults: SimFaults | None
    outbound_url: str | None = None

    @property
    def is_sim(self) -> bool:
        return self.scheme == "sim"

    def definition(self) -> str:
        """A fingerprint of this host's whole definition (every resolved setting; no secret
        values live here): ``--resume`` carries a host over only when it is unchanged."""
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()[:32]


_BUILTIN: dict[str, Any] = {
    "site": "Default Web Site",
    "ip": "*",
    "port": 443,
    "winrm_cert_validation": True,
    "strategy": "remove",
    "restart": "iisreset",
    "allow_group_policy": False,
    "profiles": ("legacy", "modern"),
    "timeout": 120.0,
}


class Inventory(_Strict):
    """A fleet: ``version``, ``[defaults]`` and ``[[hosts]]`` (names unique, at least one)."""

    version: Literal[1] = 1
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: tuple[InventoryHost, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Inventory:
        seen: set[str] = set()
        for host in self.hosts:
            key = host.name.lower()
            if key in seen:
                raise ValueError(f"host name {host.name!r} is used twice; names must be unique")
            seen.add(key)
        return self

    def resolved(self, base_dir: Path | None = None) -> list[ResolvedHost]:
        """Every host with defaults applied; relative PFX paths are made absolute."""
        return [self.resolve(h, base_dir) for h in self.hosts]

    def resolve(self, host: InventoryHost, base_dir: Path | None = None) -> ResolvedHost:
        """One host with defaults applied (host value, else ``[defaults]``, else built-in)."""
        from sectigo_chain.hosts.targets import parse_target

        values: dict[str, Any] = {}
        for name in HostSettings.model_fields:
            value = getattr(host, name)
            if value is None:
                value = getattr(self.defaults, name)
            if value is None:
                value = _BUILTIN.get(name)
            values[name] = value
        if values["pfx"] and base_dir is not None and not Path(values["pfx"]).is_absolute():
            values["pfx"] = str(base_dir / values["pfx"])
        if values["sim_faults"] is not None and not host.target.startswith("sim://"):
            values["sim_faults"] = None  # a default only applies to the sim hosts
        scheme, _ = parse_target(host.target)
        return ResolvedHost(name=host.name, target=host.target, scheme=scheme, **values)

    def __str__(self) -> str:
        """The hosts, one line each: name, target, site."""
        lines = [f"Inventory: {len(self.hosts)} host(s)"]
        for host in self.hosts:
            site = host.site or self.defaults.site or ""
            lines.append(f"  {host.name:<20} {host.target}" + (f"  site {site!r}" if site else ""))
        return "\n".join(lines)


def inventory_schema() -> dict[str, Any]:
    """The JSON schema of an inventory (published as docs/inventory.schema.json)."""
    schema = Inventory.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sectigo-chain fleet inventory"
    return schema


def _load_toml(text: str, name: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as tomllib
        except ImportError:
            raise InputError("reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{name} is not valid TOML: {exc}") from None


def _load_yaml(text: str, name: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise InputError(
            f"{name} is YAML; install pyyaml for YAML inventories (or write it as TOML)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{name} is not valid YAML: {exc}") from None


_MODELS: tuple[type[BaseModel], ...] = (Inventory, InventoryHost, CheckEndpoint, SimFaults)


def parse_inventory(data: Mapping[str, Any], *, name: str = "inventory") -> Inventory:
    """Validate an already parsed document; :class:`InputError` lists every problem."""
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        problems = []
        for loc, msg in _one_error_per_mistake(exc.errors(include_url=False, include_input=False)):
            where = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{where}: {msg}")
        hosts = data.get("hosts") if isinstance(data, Mapping) else None
        problems = [_name_hosts(p, hosts) for p in problems]
        raise InputError(f"{name} is not a valid inventory: " + "; ".join(problems)) from None


def _one_error_per_mistake(errors: Any) -> list[tuple[tuple[Any, ...], str]]:
    """pydantic's errors, one per mistake: a misspelt key is reported once, as an unknown key
    with the likely intended one (not also as a missing field), and a list that is too short
    only because an item in it failed is not reported again."""
    import difflib

    keys = sorted(
        {name for model in _MODELS for name in model.model_fields}
        | {alias for model in _MODELS for f in model.model_fields.values() if (alias := f.alias)}
    )
    extra = {tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"}
    out: list[tuple[tuple[Any, ...], str]] = []
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(
            tuple(o["loc"])[: len(loc)] == loc and tuple(o["loc"]) != loc for o in errors
        ):
            continue
        if err["type"] == "missing" and any(
            e[:-1] == loc[:-1] and difflib.get_close_matches(str(loc[-1]), [str(e[-1])], cutoff=0.6)
            for e in extra
        ):
            continue  # said once, by the misspelt key
        if err["type"] == "extra_forbidden":
            missing = [str(o["loc"][-1]) for o in errors
                       if o["type"] == "missing" and tuple(o["loc"])[:-1] == loc[:-1]]  # fmt: skip
            close = difflib.get_close_matches(str(loc[-1]), missing, n=1, cutoff=0.6)
            close = close or difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append((loc, f"unknown key{hint}"))
            continue
        out.append((loc, err["msg"]))
    return out


def _name_hosts(problem: str, hosts: Any) -> str:
    """``hosts.3.port: ...`` -> ``hosts.3 (web04).port: ...`` when the name is known."""
    match = re.match(r"hosts\.(\d+)(.*)", problem)
    if not match or not isinstance(hosts, list):
        return problem
    index = int(match.group(1))
    if index < len(hosts) and isinstance(hosts[index], Mapping) and "name" in hosts[index]:
        return f"hosts.{index} ({hosts[index]['name']}){match.group(2)}"
    return problem


def load_inventory(path: str | os.PathLike[str]) -> tuple[Inventory, Path]:
    """Read an inventory file (``.toml``, ``.yaml``/``.yml`` or ``.json``).

    Returns the inventory and the folder relative PFX paths are resolved against.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read inventory {p}: {exc.strerror}; check the path") from None
    except UnicodeDecodeError:
        raise InputError(f"inventory {p} is not UTF-8 text; save it as UTF-8") from None
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        data = _load_yaml(text, str(p))
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{p} is not valid JSON: {exc}") from None
    elif suffix == ".toml":
        data = _load_toml(text, str(p))
    else:
        raise InputError(f"{p}: unknown inventory format; name it .toml, .yaml or .json")
    if not isinstance(data, Mapping):
        raise InputError(f"{p} must hold a table/mapping with 'hosts'")
    return parse_inventory(data, name=str(p)), p.resolve().parent


class HostSecrets:
    """The secret values one host needs, read from the environment. Never printed."""

    __slots__ = ("pfx_password", "winrm_password")

    def __init__(self, winrm_password: SecretStr | None, pfx_password: SecretStr | None) -> None:
        self.winrm_password = winrm_password
        self.pfx_password = pfx_password

    def __repr__(self) -> str:
        return "HostSecrets(**********)"


def host_secrets(host: ResolvedHost, environ: Mapping[str, str] | None = None) -> HostSecrets:
    """Read ``host``'s secrets; :class:`InputError` naming the host and the variable if unset.

    The values are registered with :func:`sectigo_chain.logs.register_secret`."""
    env = os.environ if environ is None else environ

    def read(var: str | None, what: str) -> SecretStr | None:
        if not var:
            return None
        value = env.get(var)
        if value is None:
            raise InputError(
                f"host {host.name}: environment variable {var} is not set (it should hold the "
                f"{what}); set it before the rollout"
            )
        from sectigo_chain.logs import register_secret

        register_secret(value)  # masked in every log line from now on
        return SecretStr(value)

    winrm = read(host.password_env, "WinRM password") if host.scheme == "winrm" else None
    pfx = read(host.pfx_password_env, "PFX password") if host.pfx else None
    return HostSecrets(winrm, pfx)
