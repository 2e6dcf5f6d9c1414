"""``fleet --shard K/N`` + ``fleet merge``: a 200-host fleet split into 4 shards run as 4
processes gives, merged, the report one process gives."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.fleet.report import FleetReport
from sectigo_chain.fleet.shard import Shard, merge_reports, shard_of

HOSTS = 200
# Each process makes its own lab keys, and the simulated listener its own port: rows are
# compared on everything that does not depend on those.
KEPT = ("name", "target", "site", "status", "changed", "converged", "verify", "position")
KEPT += ("definition", "rolled_back", "rollback_complete", "error")


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    scenarios = ["broken-r46", "broken-e46", "fixed", "misplaced"]
    body = "".join(
        f'[[hosts]]\nname = "web{i:03d}"\ntarget = "sim://{scenarios[i % 4]}"\n\n'
        for i in range(HOSTS)
    )
    path.write_text("version = 1\n\n" + body, encoding="utf-8")
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "sectigo_chain", "fleet", *args, "-q"]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(report: FleetReport) -> list[dict[str, object]]:
    out = []
    for row in report.hosts:
        doc = row.model_dump(mode="json")
        kept = {k: doc[k] for k in KEPT}
        kept["before"] = row.before.verdict if row.before else None
        kept["after"] = row.after.verdict if row.after else None
        kept["actions"] = [a.kind for a in row.actions]
        kept["served_after"] = [c.common_name for c in row.after.chain] if row.after else None
        out.append(kept)
    return out


def test_four_shard_processes_merge_into_the_one_process_report(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    common = ["--yes", "--journal-dir", str(tmp_path / "journals")]
    procs = [
        _cli(tmp_path, "apply", str(inv), "--shard", f"{k}/4", "--report", f"shard{k}.json",
             *common)
        for k in range(1, 5)
    ]  # fmt: skip
    for proc in procs:
        _out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    whole = _cli(tmp_path, "apply", str(inv), "--report", "whole.json", "--journal-dir",
                 str(tmp_path / "journals-whole"), "--yes")  # fmt: skip
    _out, err = whole.communicate(timeout=240)
    assert whole.returncode == 0, err

    shards = [FleetReport.load(tmp_path / f"shard{k}.json") for k in range(1, 5)]
    sizes = [len(s.hosts) for s in shards]
    assert sum(sizes) == HOSTS
    assert all(s.hosts for s in shards)  # each shard had work
    assert [s.shard for s in shards] == ["1/4", "2/4", "3/4", "4/4"]

    merge = _cli(tmp_path, "merge", *(f"shard{k}.json" for k in (3, 1, 4, 2)),
                 "--report", "merged.json", "--html", "merged.html")  # fmt: skip
    _out, err = merge.communicate(timeout=60)
    assert merge.returncode == 0, err
    merged = FleetReport.load(tmp_path / "merged.json")
    one = FleetReport.load(tmp_path / "whole.json")
    assert _rows(merged) == _rows(one)
    assert merged.counts == one.counts
    assert merged.exit_code() == one.exit_code() == 0
    assert merged.complete
    assert "web000" in (tmp_path / "merged.html").read_text(encoding="utf-8")
    print(f"4 shards of {sizes} hosts merged = one-process report: {dict(one.counts)}")


def test_shard_assignment_is_stable_and_balanced() -> None:
    names = [f"host-{i}" for i in range(4000)]
    assignment = [shard_of(n, 4) for n in names]
    assert assignment == [shard_of(n, 4) for n in names]
    assert shard_of("web001", 4) == shard_of("web001", 4)
    counts = Counter(assignment)
    assert set(counts) == {1, 2, 3, 4}
    assert all(800 < c < 1200 for c in counts.values())
    # every host in exactly one shard
    for n in names[:200]:
        assert sum(Shard(k, 4).holds(n) for k in range(1, 5)) == 1


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0", ""])
def test_bad_shards_are_input_errors(text: str) -> None:
    with pytest.raises(InputError):
        Shard.parse(text)


def test_merge_refuses_incomplete_or_mixed_sets(tmp_path: Path) -> None:
    from sectigo_chain.fleet.rollout import run_fleet

    inv = tmp_path / "fleet.toml"
    inv.write_text(
        "version = 1\n\n"
        + "".join(f'[[hosts]]\nname = "h{i}"\ntarget = "sim://fixed"\n\n' for i in range(12)),
        encoding="utf-8",
    )
    parts = [run_fleet(inv, "plan", shard=f"{k}/3", sim_tls=False) for k in (1, 2, 3)]
    assert len(merge_reports(parts).hosts) == 12
    with pytest.raises(InputError, match="missing"):
        merge_reports(parts[:2])
    with pytest.raises(InputError, match="twice"):
        merge_reports([parts[0], parts[0], parts[1]])
    whole = run_fleet(inv, "plan", sim_tls=False)
    with pytest.raises(InputError, match="--shard"):
        merge_reports([whole])
    checked = run_fleet(inv, "check", shard="1/3", sim_tls=False)
    with pytest.raises(InputError, match="modes"):
        merge_reports([checked, parts[1], parts[2]])
    doc = json.loads(parts[0].model_dump_json())
    assert doc["shard"] == "1/3"
