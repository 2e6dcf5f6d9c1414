"""plan(): ordering, secrets, PFX protection choice, input errors (beyond the golden cases)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import observe
from sectigo_chain.state.models import ObservedState
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix
from sectigo_chain.testing.lab import default_lab
from sectigo_chain.x509.pfx import read_pfx_protection

LAB = default_lab()
NOW = dt.datetime.now(dt.timezone.utc)
ORDER = [
    "import_cross_sign", "remove_misplaced", "remove_duplicate", "disallow_root",
    "disable_root_auto_update", "remove_self_signed_root", "import_pfx", "move_leaf",
    "set_binding", "restart",
]  # fmt: skip


def _observed(name: str, **changes: object) -> ObservedState:
    obs = observe(SimulatedHost(name))
    return obs.model_copy(update=changes) if changes else obs


def test_actions_follow_the_documented_order() -> None:
    leaf = LAB.issue_leaf(["order.example.test"])
    desired = sectigo_fix(
        site="Default Web Site", pfx=leaf.pfx("pw"), pfx_password="pw",
        root_strategy="remove_and_disallow", catalog=LAB.catalog,
    )  # fmt: skip
    p = plan(desired, _observed("misplaced"), at=NOW, catalog=LAB.catalog)
    kinds = [a.kind for a in p.actions]
    assert kinds == sorted(kinds, key=ORDER.index)
    assert set(kinds) >= {
        "import_cross_sign", "remove_misplaced", "disallow_root", "remove_self_signed_root",
        "import_pfx", "set_binding", "restart",
    }  # fmt: skip


@pytest.mark.parametrize(("build", "legacy"), [(14393, True), (16299, False), (17763, False)])
def test_aes_pfx_is_imported_as_legacy_only_before_build_16299(build: int, legacy: bool) -> None:
    leaf = LAB.issue_leaf(["aes.example.test"])
    aes = leaf.pfx("pw", legacy=False)
    desired = sectigo_fix(site="Default Web Site", pfx=aes, pfx_password="pw", catalog=LAB.catalog)
    obs = _observed("fixed")
    obs = obs.model_copy(update={"os": obs.os.model_copy(update={"build": build})})
    p = plan(desired, obs, at=NOW, catalog=LAB.catalog)
    (imp,) = [a for a in p.actions if a.kind == "import_pfx"]
    sent = base64.b64decode(imp.render_params()["pfx_b64"])
    assert read_pfx_protection(sent).legacy_compatible is legacy
    assert ("re-encoded" in imp.reason) is legacy
    assert imp.render_params()["password"] == "pw"
    assert "pfx_b64" not in imp.params
    assert "password" not in imp.params
    assert "pfx_b64" not in p.model_dump_json()


def test_an_unknown_site_or_a_site_without_certificate_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not found"):
        plan(sectigo_fix(site="Nope", catalog=LAB.catalog), _observed("fixed"), at=NOW,
             catalog=LAB.catalog)  # fmt: skip
    obs = _observed("fixed")
    bare = obs.site("Default Web Site").model_copy(update={"bindings": ()})  # type: ignore[union-attr]
    with pytest.raises(InputError, match="--pfx"):
        plan(sectigo_fix(site="Default Web Site", catalog=LAB.catalog),
             obs.model_copy(update={"sites": (bare,)}), at=NOW, catalog=LAB.catalog)  # fmt: skip


def test_plan_is_pure_and_deterministic() -> None:
    desired = sectigo_fix(site="Default Web Site", catalog=LAB.catalog)
    obs = _observed("shared-ip")
    first = plan(desired, obs, at=NOW, catalog=LAB.catalog)
    assert first == plan(desired, obs, at=NOW, catalog=LAB.catalog)
    assert obs == _observed("shared-ip")
