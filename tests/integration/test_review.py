"""Issue 17 (4): distrust actions carry a revert date, in the plan and the journal, and
``sectigo-chain review JOURNAL...`` lists the fixes due for review."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sectigo_chain.cli.main import main
from sectigo_chain.errors import InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import rollback
from sectigo_chain.run.review import review
from sectigo_chain.state.plan_models import ApplyResult
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix

FAST = RetryPolicy(attempts=3, wait_initial=0)
DISTRUST = {"remove_self_signed_root", "disallow_root", "disable_root_auto_update"}


def _applied(tmp: Path, strategy: str = "remove_and_disallow") -> tuple[SimulatedHost, ApplyResult]:
    host = SimulatedHost("drift")  # self-signed R46 in Root; Automatic Root Update reachable
    now = dt.datetime.now(dt.timezone.utc)
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog, root_strategy=strategy)  # type: ignore[arg-type]
    p = plan(desired, observe(host), at=now, catalog=host.catalog)
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp, retry=FAST,
                   at=now)  # fmt: skip
    return host, result


def _expected(host: SimulatedHost) -> dt.date:
    """The earlier of the cross-sign's and its issuer's (the old clients' anchor) expiry."""
    lab = host.lab
    return min(lab.r46_cross.not_valid_after_utc, lab.usertrust_rsa.cert.not_valid_after_utc).date()


@pytest.mark.parametrize("strategy", ["remove_and_disallow", "disable_auto_update"])
def test_distrust_actions_carry_a_revert_date_in_plan_and_journal(
    strategy: str, tmp_path: Path
) -> None:
    host, result = _applied(tmp_path, strategy)
    kinds = {a.kind for a in result.plan.actions}
    policy = "disallow_root" if strategy == "remove_and_disallow" else "disable_root_auto_update"
    assert kinds & DISTRUST == {"remove_self_signed_root", policy}
    for action in result.plan.actions:
        if action.kind in DISTRUST:
            assert action.revert_after == _expected(host)
            assert f"review by {_expected(host):%Y-%m-%d}" in action.revert_reason
            assert "cross-sign" in action.revert_reason
        else:
            assert action.revert_after is None
    assert result.journal is not None
    doc = json.loads(Path(result.journal).read_text())
    dated = {s["kind"]: s["revert_after"] for s in doc["steps"] if s.get("revert_after")}
    assert set(dated) == kinds & DISTRUST
    assert set(dated.values()) == {_expected(host).isoformat()}
    assert "review:" in str(result.plan)


def test_review_lists_what_is_due_and_leaves_out_what_was_rolled_back(tmp_path: Path) -> None:
    host, result = _applied(tmp_path)
    assert result.journal is not None
    when = _expected(host)
    early = review([result.journal], at=when - dt.timedelta(days=31))
    assert [i.kind for i in early.items] == ["disallow_root", "remove_self_signed_root"]
    assert early.due == ()
    assert len(review([result.journal], at=when - dt.timedelta(days=31), within_days=31).due) == 2
    late = review([result.journal], at=when)
    assert {i.kind for i in late.due} == {"disallow_root", "remove_self_signed_root"}
    assert "2 of 2 fix(es) due" in str(late)
    rb = rollback(result.journal, host)
    assert rb.complete
    assert review([result.journal], at=when).items == ()


def test_review_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host, result = _applied(tmp_path)
    assert result.journal is not None
    when = _expected(host)
    before = (when - dt.timedelta(days=1)).isoformat()
    assert main(["review", result.journal, "--at", before]) == 0
    out = capsys.readouterr().out
    assert "0 of 2 fix(es) due" in out
    assert main(["review", result.journal, "--at", before, "--within", "1", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in doc["due"]] == ["disallow_root", "remove_self_signed_root"]
    assert doc["due"][0]["revert_after"] == when.isoformat()
    bad = tmp_path / "not-a-journal.json"
    bad.write_text("{}")
    assert main(["review", str(bad)]) == 2
    assert "not a sectigo-chain journal" in capsys.readouterr().err
    assert main(["review", result.journal, "--at", "soon"]) == 2


def test_review_refuses_a_negative_window(tmp_path: Path) -> None:
    _host, result = _applied(tmp_path)
    assert result.journal is not None
    with pytest.raises(InputError):
        review([result.journal], at=dt.date(2030, 1, 1), within_days=-1)
