"""Tests that kill mutants of run/journal.py that the rest of the suite let live (issue 20):
wrong-host rollback, secrets scrubbing, undo of a re-bind and of a root auto-update change,
a failed undo recorded."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sectigo_chain.errors import InputError
from sectigo_chain.hosts.retry import RetryPolicy
from sectigo_chain.hosts.sim.host import Faults, SimulatedHost
from sectigo_chain.run.applier import apply, observe
from sectigo_chain.run.journal import Journal, _dumps, rollback, undo_steps
from sectigo_chain.state.planner import plan
from sectigo_chain.state.recipe import sectigo_fix

FAST = RetryPolicy(attempts=1, wait_initial=0)
THUMB = "AD98F9F3E47D753B65D482B3A45217BB6EF5E438"
OLD = "1111111111111111111111111111111111111111"


def _applied(tmp_path: Path, scenario: str = "misplaced") -> tuple[SimulatedHost, str, Any]:
    host = SimulatedHost(scenario)
    before = observe(host)
    desired = sectigo_fix(site="Default Web Site", catalog=host.catalog)
    now = dt.datetime.now(dt.timezone.utc)
    p = plan(desired, observe(host), at=now, catalog=host.catalog, target=host.target)
    result = apply(p, host, desired=desired, catalog=host.catalog, journal_dir=tmp_path,
                   retry=FAST, at=now)  # fmt: skip
    assert result.journal is not None
    return host, result.journal, before


def test_rollback_on_another_host_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    _, journal, _ = _applied(tmp_path)
    other = SimulatedHost("broken-r46")
    before = other.snapshot()
    with pytest.raises(InputError, match="roll it back against the host it was written for"):
        rollback(journal, other, retry=FAST)
    assert other.snapshot() == before
    assert other.calls == []
    doc = json.loads(Path(journal).read_text())
    assert doc["status"] == "applied"  # untouched
    assert doc["rollback"] == []


def test_a_journal_without_target_rolls_back_anywhere(tmp_path: Path) -> None:
    host, journal, before = _applied(tmp_path)
    doc = json.loads(Path(journal).read_text())
    del doc["target"]
    Path(journal).write_text(json.dumps(doc))
    assert rollback(journal, host, retry=FAST).complete
    assert observe(host) == before


def test_failed_undo_is_recorded_and_no_restart_follows(tmp_path: Path) -> None:
    host, journal, _ = _applied(tmp_path)
    done = json.loads(Path(journal).read_text())["steps"]
    undoable = [s for s in done if s["template"] != "restart"]
    host.faults = Faults(fail_action=0, persistent=True)  # every change the host is asked fails
    host._action_count = 0
    result = rollback(journal, host, retry=FAST)
    assert not result.complete
    assert not result.restarted  # no restart after an incomplete rollback
    restart = [s for s in done if s["template"] == "restart"]
    assert result.undone == tuple(f"step {s['index'] + 1} (restart)" for s in restart)
    assert len(result.errors) == len(undoable)
    last = undoable[-1]
    assert result.errors[0].startswith(f"step {last['index'] + 1} ({last['kind']}): ")
    doc = json.loads(Path(journal).read_text())
    assert doc["status"] == "rollback_incomplete"
    failed = [r for r in doc["rollback"] if not r["ok"]]
    assert [r["step"] for r in failed] == [s["index"] for s in reversed(undoable)]
    assert all("injected" in r["error"] for r in failed)
    assert [s["status"] for s in doc["steps"]] == [
        "rolled_back" if s["template"] == "restart" else "done" for s in done
    ]


def _binding_step(
    previous: dict[str, Any] | None, flags_set: int = 1, flags_clear: int = 0
) -> dict[str, Any]:
    return {
        "template": "set_binding",
        "params": {"site": "S", "ip": "*", "port": 443, "host": "h", "thumbprint": THUMB,
                   "store_name": "My", "ssl_flags_set": flags_set, "ssl_flags_clear": flags_clear},
        "previous_binding": previous,
    }  # fmt: skip


def test_undo_of_a_rebind_restores_the_previous_certificate_and_flags() -> None:
    prev = {"certificate_hash": OLD, "certificate_store": "WebHosting", "ssl_flags": 2}
    # The apply set SNI (1) and cleared flag 2: the undo sets 2 back and clears 1.
    ((template, params),) = undo_steps(_binding_step(prev, flags_set=1, flags_clear=2))
    assert template == "set_binding"
    assert params == {"site": "S", "ip": "*", "port": 443, "host": "h", "thumbprint": OLD,
                      "store_name": "WebHosting", "ssl_flags_set": 2,
                      "ssl_flags_clear": 1}  # fmt: skip
    # Flags the apply did not change stay as they were; no store recorded means My.
    prev = {"certificate_hash": OLD, "certificate_store": None, "ssl_flags": 1}
    ((_, params),) = undo_steps(_binding_step(prev, flags_set=1, flags_clear=0))
    assert (params["store_name"], params["ssl_flags_set"], params["ssl_flags_clear"]) == (
        "My",
        0,
        0,
    )


def test_undo_of_a_new_binding_removes_it() -> None:
    key = {"site": "S", "ip": "*", "port": 443, "host": "h"}
    assert undo_steps(_binding_step(None)) == [("remove_binding", key)]
    no_cert = {"certificate_hash": None, "certificate_store": None, "ssl_flags": 0}
    assert undo_steps(_binding_step(no_cert)) == [("remove_binding", key)]


@pytest.mark.parametrize("previous", [True, False, None])
def test_undo_of_root_auto_update_restores_the_previous_value(previous: bool | None) -> None:
    step = {"template": "set_root_auto_update", "params": {"disabled": True},
            "previous_value": previous}  # fmt: skip
    assert undo_steps(step) == [("set_root_auto_update", {"disabled": previous})]


def test_undo_of_imports_and_moves() -> None:
    imp = {"template": "import_pfx", "params": {"thumbprint": THUMB, "store_name": "WebHosting"}}
    assert undo_steps(imp) == [("remove_certificate", {"thumbprint": THUMB,
        "store_location": "LocalMachine", "store_name": "WebHosting",
        "physical_store": ".Default"})]  # fmt: skip
    dis = {"template": "disallow_certificate", "params": {"thumbprint": THUMB, "store_name": "X"}}
    assert undo_steps(dis)[0][1]["store_name"] == "Disallowed"
    move = {"template": "move_certificate", "params": {"thumbprint": THUMB,
            "from_location": "CurrentUser", "from_store": "My", "to_location": "LocalMachine",
            "to_store": "My", "remove_source": True}}  # fmt: skip
    assert undo_steps(move) == [("move_certificate", {"thumbprint": THUMB,
        "from_location": "LocalMachine", "from_store": "My", "to_location": "CurrentUser",
        "to_store": "My", "remove_source": True})]  # fmt: skip
    assert undo_steps({"template": "restart", "params": {"mode": "iisreset"}}) == []


# --- secrets never reach the journal file -------------------------------------------------------


def test_dumps_scrubs_every_secret_key_at_any_depth() -> None:
    value = {
        "password": "pw-1",
        "steps": [{"params": {"pfx_b64": "cGZ4", "pfx_password": "pw-2", "thumbprint": THUMB}}],
        "pfx": "raw",
        "note": "kept",
    }
    text = _dumps(value).decode()
    for secret in ("pw-1", "pw-2", "cGZ4", "raw"):
        assert secret not in text
    doc = json.loads(text)
    assert doc["password"] == doc["pfx"] == "**********"
    assert doc["steps"][0]["params"] == {
        "pfx_b64": "**********", "pfx_password": "**********", "thumbprint": THUMB,
    }  # fmt: skip
    assert doc["note"] == "kept"


def test_dumps_leaves_text_that_only_mentions_a_secret_key() -> None:
    value = {"message": 'the template said "password": no', "list": ["pfx"]}
    assert json.loads(_dumps(value)) == value


def test_journal_file_never_holds_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    plan_doc = {"actions": [{"params": {"password": "pw-3", "pfx_b64": "c2VjcmV0"}}]}
    steps = [{"index": 0, "params": {"pfx_password": "pw-4"}, "status": "pending"}]
    journal = Journal.create(path, "sim://x", plan_doc, steps)
    journal.doc["steps"][0]["data"] = {"password": "pw-5"}
    journal.write()
    text = path.read_text()
    for secret in ("pw-3", "c2VjcmV0", "pw-4", "pw-5"):
        assert secret not in text
    assert json.loads(text)["target"] == "sim://x"
    journal.close()


def test_journal_text_holds_the_plan_once_and_last(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "j.json", "sim://x", {"actions": []}, [])
    text = journal.text().decode()
    assert text.count('"plan":') == 1
    assert text.rstrip("\n").endswith('"plan":{"actions":[]}}')
    journal.close()


def test_restore_of_a_current_user_root_copy_is_staged_through_ca() -> None:
    from sectigo_chain.run.journal import _restore
    from sectigo_chain.x509.catalog import default_catalog
    from sectigo_chain.x509.certs import thumbprint

    cert = default_catalog().certificate("r46-root-selfsigned")
    from cryptography.hazmat.primitives.serialization import Encoding

    base = {"der_b64": base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
            "thumbprint": thumbprint(cert), "friendly_name": ""}  # fmt: skip
    (step,) = _restore({**base, "store_location": "CurrentUser", "store_name": "Root"})
    assert step[0] == "restore_staged"
    assert step[1]["staging"] == "CA"
    (step,) = _restore({**base, "store_location": "CurrentUser", "store_name": "My"})
    assert (step[0], step[1]["staging"]) == ("restore_staged", "My")
    # A LocalMachine default store is written directly.
    (step,) = _restore({**base, "store_location": "LocalMachine", "store_name": "CA"})
    assert step[0] == "import_certificate"
    assert step[1]["store_name"] == "CA"


def _der_backup(store_location: str, store_name: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_chain.x509.catalog import default_catalog
    from sectigo_chain.x509.certs import thumbprint

    cert = default_catalog().certificate("r46-root-selfsigned")
    return {"der_b64": base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
            "thumbprint": thumbprint(cert), "friendly_name": "kept name",
            "store_location": store_location, "store_name": store_name,
            "physical_store": ".Default"}  # fmt: skip


def test_undo_of_an_import_pfx_that_replaced_a_keyless_copy_puts_that_copy_back() -> None:
    backup = _der_backup("LocalMachine", "WebHosting")
    step = {"template": "import_pfx", "backup": backup,
            "params": {"thumbprint": backup["thumbprint"], "store_name": "WebHosting"}}  # fmt: skip
    remove, restore = undo_steps(step)
    assert remove == ("remove_certificate", {"thumbprint": backup["thumbprint"],
        "store_location": "LocalMachine", "store_name": "WebHosting",
        "physical_store": ".Default"})  # fmt: skip
    assert restore == ("import_certificate", {"der_b64": backup["der_b64"],
        "thumbprint": backup["thumbprint"], "store_location": "LocalMachine",
        "store_name": "WebHosting", "friendly_name": "kept name"})  # fmt: skip
    # Without a backup (nothing was replaced) the undo only removes what the import added.
    assert undo_steps({**step, "backup": None}) == [remove]


def test_undo_of_a_new_binding_on_a_shared_ip_port_gives_the_other_binding_its_certificate() -> (
    None
):
    step = _binding_step(None)
    step["params"]["ip"] = "10.0.0.5"
    step["shared_binding"] = {"site": "Other", "ip": "10.0.0.5", "port": 443, "host": "",
                              "certificate_hash": OLD,
                              "certificate_store": "WebHosting"}  # fmt: skip
    key = {"site": "S", "ip": "10.0.0.5", "port": 443, "host": "h"}
    assert undo_steps(step) == [
        ("remove_binding", key),
        ("set_binding", {"site": "Other", "ip": "10.0.0.5", "port": 443, "host": "",
                         "thumbprint": OLD, "store_name": "WebHosting",
                         "ssl_flags_set": 0, "ssl_flags_clear": 0}),
    ]  # fmt: skip
    # No store recorded means My; a shared entry without a certificate needs nothing back.
    step["shared_binding"]["certificate_store"] = None
    assert undo_steps(step)[1][1]["store_name"] == "My"
    step["shared_binding"]["certificate_hash"] = None
    assert undo_steps(step) == [("remove_binding", key)]


def test_rollback_retries_an_undo_only_as_its_retry_policy_says(tmp_path: Path) -> None:
    # The reply to the first undo is lost (the change was made). With one attempt the
    # rollback reports the step as failed; the default policy (3 attempts) would have
    # retried it and succeeded, so the policy passed to rollback() is the one in force.
    host, journal, _ = _applied(tmp_path)
    host.faults = Faults(drop_connection_at=0)
    host._action_count = 0
    result = rollback(journal, host, retry=FAST)
    assert not result.complete
    assert len(result.errors) == 1
    assert "connection" in result.errors[0].lower()
    # With two attempts (no wait) the same lost reply is retried and the rollback completes.
    (tmp_path / "again").mkdir()
    host2, journal2, before2 = _applied(tmp_path / "again")
    host2.faults = Faults(drop_connection_at=0)
    host2._action_count = 0
    result2 = rollback(journal2, host2, retry=RetryPolicy(attempts=2, wait_initial=0))
    assert result2.complete, result2.errors
    assert observe(host2) == before2


# --- round 2 (seed-7 sample): observing during rollback, CCS undo, staging saved, str() --------


class _Host:
    """The simulated host behind a recording front: the timeouts each script got, and the
    first ``observe`` replies replaced (a lost connection, or a failure without data)."""

    def __init__(self, host: SimulatedHost, observe_faults: list[str] | None = None) -> None:
        self.host = host
        self.target = host.target
        self.timeouts: list[tuple[str, float]] = []
        self.observe_faults = list(observe_faults or [])

    def run(self, script: Any, *, timeout: float) -> Any:
        from sectigo_chain.errors import ConnectionFailed
        from sectigo_chain.hosts.base import ScriptResult

        self.timeouts.append((script.name, timeout))
        if script.name == "observe" and self.observe_faults:
            fault = self.observe_faults.pop(0)
            if fault == "drop":
                raise ConnectionFailed("connection dropped (test)", host=self.target)
            return ScriptResult(ok=False)
        return self.host.run(script, timeout=timeout)

    def close(self) -> None:
        self.host.close()


def test_observing_after_a_rollback_fails_with_a_message_that_names_observe() -> None:
    from sectigo_chain.errors import ExecutionError
    from sectigo_chain.run.journal import _observe_state

    front = _Host(SimulatedHost("broken-r46"), ["empty"])
    with pytest.raises(ExecutionError) as info:
        _observe_state(front, 30.0, FAST)  # type: ignore[arg-type]
    assert str(info.value) == "observe: no data"
    assert (info.value.script, info.value.host) == ("observe", front.target)


def test_observing_during_rollback_retries_as_the_policy_says() -> None:
    from sectigo_chain.errors import ConnectionFailed
    from sectigo_chain.run.journal import _observe_state

    # One attempt: the lost reply is the error (the default policy would retry it).
    with pytest.raises(ConnectionFailed):
        _observe_state(_Host(SimulatedHost("broken-r46"), ["drop"]), 30.0, FAST)  # type: ignore[arg-type]
    two = RetryPolicy(attempts=2, wait_initial=0)
    state = _observe_state(_Host(SimulatedHost("broken-r46"), ["drop"]), 30.0, two)  # type: ignore[arg-type]
    assert state.certificates


def test_observing_a_ccs_host_reads_its_files_through_the_same_host() -> None:
    from sectigo_chain.run.journal import _observe_state

    front = _Host(SimulatedHost("ccs-pfx"))
    state = _observe_state(front, 45.0, FAST)  # type: ignore[arg-type]
    assert state.ccs is not None
    assert state.ccs.error is None
    assert [name for name, _ in front.timeouts] == ["observe", "inspect_ccs"]


def test_rollback_gives_every_script_its_timeout_including_the_last_observe(
    tmp_path: Path,
) -> None:
    host, journal, _before = _applied(tmp_path)
    front = _Host(host)
    result = rollback(journal, front, timeout=77.0, retry=FAST)  # type: ignore[arg-type]
    assert result.complete
    assert result.checked
    assert front.timeouts[-1][0] == "observe"
    assert {t for _, t in front.timeouts} == {77.0}


def test_a_failed_final_observe_makes_the_rollback_incomplete_and_says_why(
    tmp_path: Path,
) -> None:
    host, journal, _ = _applied(tmp_path)
    result = rollback(journal, _FailLastObserve(host), retry=FAST)  # type: ignore[arg-type]
    assert result.undone  # the undos themselves ran
    assert not result.complete
    assert not result.checked
    assert result.errors == ("could not observe the host to check the rollback: observe: no data",)


class _FailLastObserve(_Host):
    """Every observe succeeds until the undos are done (the rollback's closing check fails)."""

    def run(self, script: Any, *, timeout: float) -> Any:
        from sectigo_chain.hosts.base import ScriptResult

        if script.name == "observe" and any(n == "restart" for n, _ in self.timeouts):
            self.timeouts.append((script.name, timeout))
            return ScriptResult(ok=False)
        return super().run(script, timeout=timeout)


def test_undo_of_a_ccs_binding_gives_back_its_flags() -> None:
    # SNI + CCS (3); the apply set SNI and cleared the CCS bit: the undo sets CCS back.
    prev = {"certificate_hash": None, "certificate_store": None, "ssl_flags": 3}
    ((template, params),) = undo_steps(_binding_step(prev, flags_set=1, flags_clear=2))
    assert template == "set_binding"
    assert params == {"site": "S", "ip": "*", "port": 443, "host": "h", "thumbprint": THUMB,
                      "store_name": "My", "ssl_flags_set": 2, "ssl_flags_clear": 0}  # fmt: skip


def test_undo_of_a_ccs_rebuild_restores_the_backup() -> None:
    step = {"template": "rebuild_ccs_pfx",
            "params": {"path": "\\\\files\\ccs\\web.pfx", "backup_path": "\\\\files\\ccs\\web.bak",
                       "expected_sha256": "A" * 64}}  # fmt: skip
    assert undo_steps(step) == [
        ("restore_ccs_pfx", {"path": "\\\\files\\ccs\\web.pfx",
                             "backup_path": "\\\\files\\ccs\\web.bak"}),
    ]  # fmt: skip


def test_a_staged_restore_journals_its_staging_store_before_copying() -> None:
    from sectigo_chain.run.journal import _restore, _run_undo

    backup = _der_backup("CurrentUser", "Root")
    ((template, params),) = _restore(backup)
    assert template == "restore_staged"
    host = SimulatedHost("fixed")
    front = _Host(host)
    step: dict[str, Any] = {}
    saved: list[Any] = []

    def save() -> None:
        # Saved before any change: only the observe that chose the store has run.
        saved.append((dict(step["staging"]), [n for n, _ in front.timeouts]))

    _run_undo(front, template, params, 30.0, FAST, step, save)  # type: ignore[arg-type]
    assert saved == [({"store": "CA", "free": True}, ["observe"])]
    assert [n for n, _ in front.timeouts][1:] == ["import_certificate", "move_certificate"]


def test_rollback_result_text_lists_undone_steps_errors_and_the_restart() -> None:
    from sectigo_chain.run.journal import RollbackResult

    result = RollbackResult(journal="j.json", undone=("step 2 (import_cross_sign)",),
                            errors=("step 1 (remove_root): refused",), restarted=True)  # fmt: skip
    assert str(result) == (
        "Rollback of j.json: INCOMPLETE\n"
        "  undone: step 2 (import_cross_sign)\n"
        "  could not undo: step 1 (remove_root): refused\n"
        "  IIS restarted"
    )
    assert str(RollbackResult(journal="j.json")) == "Rollback of j.json: complete"


# --- round 3 (seed-11 sample) -----------------------------------------------------------------


def test_text_pydantic_cannot_serialise_is_still_written_compactly() -> None:
    from sectigo_chain.run.journal import _encode

    # A lone surrogate (from a host's JSON) makes pydantic-core refuse: json.dumps writes it.
    assert _encode({"a": "\ud800", "b": [1, 2]}) == b'{"a":"\\ud800","b":[1,2]}'


class _Refusing(_Host):
    """Observe works; every other script fails with the given error document and errors."""

    def __init__(self, host: SimulatedHost, error: Any, errors: list[str]) -> None:
        super().__init__(host)
        self.error, self.errors = error, errors

    def run(self, script: Any, *, timeout: float) -> Any:
        from sectigo_chain.hosts.base import ScriptResult

        if script.name in ("observe", "inspect_ccs"):
            return super().run(script, timeout=timeout)
        return ScriptResult(ok=False, error=self.error, errors=self.errors)


@pytest.mark.parametrize(
    ("error", "errors", "said"),
    [
        ({"message": "access denied"}, [], "access denied"),
        (None, ["first", "second"], "first; second"),
        (None, [], "failed"),
    ],
)
def test_a_failed_undo_says_what_the_host_said(error: Any, errors: list[str], said: str) -> None:
    from sectigo_chain.errors import ExecutionError
    from sectigo_chain.run.journal import _run_undo

    front = _Refusing(SimulatedHost("fixed"), error, errors)
    with pytest.raises(ExecutionError) as info:
        _run_undo(front, "set_root_auto_update", {"disabled": None}, 30.0, FAST)  # type: ignore[arg-type]
    assert str(info.value) == f"set_root_auto_update: {said}"
    assert info.value.script == "set_root_auto_update"


def test_a_failed_observe_gives_the_hosts_message() -> None:
    from sectigo_chain.errors import ExecutionError
    from sectigo_chain.hosts.base import ScriptResult
    from sectigo_chain.run.journal import _observe_state

    class Broken(_Host):
        def run(self, script: Any, *, timeout: float) -> Any:
            return ScriptResult(ok=False, error={"message": "WinRM quota exceeded"})

    with pytest.raises(ExecutionError) as info:
        _observe_state(Broken(SimulatedHost("fixed")), 30.0, FAST)  # type: ignore[arg-type]
    assert str(info.value) == "observe: WinRM quota exceeded"


def test_a_rollback_whose_restart_fails_leaves_the_restart_due(tmp_path: Path) -> None:
    # The undo of a served-changing step makes a restart due (rollback_restarted False); when
    # the restart then fails, the journal still says so, so a resumed rollback restarts.
    host, journal, _ = _applied(tmp_path)
    doc = json.loads(Path(journal).read_text())
    doc["rollback_restarted"] = True  # as a previous, interrupted rollback left it
    Path(journal).write_text(json.dumps(doc))

    class NoRestart(_Host):
        def run(self, script: Any, *, timeout: float) -> Any:
            from sectigo_chain.errors import ScriptFailed
            from sectigo_chain.hosts.base import ScriptResult

            if script.name == "restart":
                result = ScriptResult(ok=False, error={"message": "iisreset failed"})
                raise ScriptFailed("restart: iisreset failed", result=result, host=self.target)
            return super().run(script, timeout=timeout)

    result = rollback(journal, NoRestart(host), retry=FAST)  # type: ignore[arg-type]
    assert not result.restarted
    after = json.loads(Path(journal).read_text())
    assert after["rollback_restarted"] is False


def test_an_unreadable_journal_is_refused_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "j.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError) as info:
        Journal.load(bad)
    text = str(info.value)
    assert text.startswith(f"journal {bad} is unreadable (")
    assert text.endswith("); it cannot be replayed")


# --- round 5 (seed-5 sample) ------------------------------------------------------------------


def test_a_staged_restore_chooses_its_store_with_the_rollbacks_retry_policy() -> None:
    from sectigo_chain.errors import ConnectionFailed
    from sectigo_chain.run.journal import _restore, _run_undo

    ((template, params),) = _restore(_der_backup("CurrentUser", "Root"))
    # The observe that chooses the staging store loses its reply; one attempt: an error.
    front = _Host(SimulatedHost("fixed"), ["drop"])
    with pytest.raises(ConnectionFailed):
        _run_undo(front, template, params, 30.0, FAST, {}, None)  # type: ignore[arg-type]
    again = _Host(SimulatedHost("fixed"), ["drop"])
    _run_undo(again, template, params, 30.0, RetryPolicy(attempts=2, wait_initial=0), {}, None)  # type: ignore[arg-type]
    assert [n for n, _ in again.timeouts] == ["observe", "observe", "import_certificate",
                                              "move_certificate"]  # fmt: skip


def test_a_journal_that_cannot_be_written_says_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "j.json"
    with pytest.raises(InputError) as info:
        Journal.create(path, "sim://x", {"actions": []}, [])
    assert str(info.value) == (
        f"cannot write the journal {path}: No such file or directory; nothing was changed "
        "(pass --journal-dir DIR, an existing writable folder)"
    )


# --- round 6 (the full run of journal.py) -----------------------------------------------------


def test_a_new_journal_is_in_progress_and_says_when_it_was_created(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    Journal.create(path, "sim://x", {"actions": []}, []).close()
    doc = json.loads(path.read_text())
    assert doc["status"] == "in_progress"
    created = dt.datetime.fromisoformat(doc["created"])
    assert created.utcoffset() == dt.timedelta(0)  # an aware UTC time, not the local clock


def test_load_refuses_a_missing_file_and_what_is_not_a_journal(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(InputError) as info:
        Journal.load(missing)
    assert str(info.value) == f"journal {missing} not found; pass the path apply printed"
    for other in ({"format": "something-else/1", "steps": []}, ["a", "list"]):
        path = tmp_path / "other.json"
        path.write_text(json.dumps(other), encoding="utf-8")
        with pytest.raises(InputError) as info:
            Journal.load(path)
        assert str(info.value) == f"{path} is not a sectigo-chain journal (sectigo-chain-journal/1)"


def test_journal_text_is_the_document_whatever_it_holds(tmp_path: Path) -> None:
    only_plan = Journal(tmp_path / "a.json", {"plan": {"actions": [1]}})
    assert json.loads(only_plan.text()) == {"plan": {"actions": [1]}}
    journal = Journal(tmp_path / "b.json", {"status": "x", "plan": {"actions": [1]}})
    assert json.loads(journal.text())["plan"] == {"actions": [1]}
    journal.doc["plan"] = {"actions": [2]}  # another object: serialised anew
    assert json.loads(journal.text()) == {"status": "x", "plan": {"actions": [2]}}


def test_every_write_fsyncs_the_folder_opened_once_until_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    real_open, real_fsync = os.open, os.fsync
    folder_opens: list[str] = []
    folder_syncs: list[int] = []

    def spy_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        fd = real_open(path, flags, *args, **kw)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            folder_opens.append(str(path))
        return fd

    def spy_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            folder_syncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    journal = Journal.create(tmp_path / "j.json", "sim://x", {"actions": []}, [])
    journal.write()
    journal.write()
    assert folder_opens == [str(tmp_path)]
    assert len(folder_syncs) == 3  # after each rename
    journal.close()
    journal.write()  # writing again reopens the folder
    assert folder_opens == [str(tmp_path), str(tmp_path)]
    assert len(folder_syncs) == 4
    journal.close()


def test_rollback_on_another_host_names_both_hosts(tmp_path: Path) -> None:
    host, journal, _ = _applied(tmp_path)
    other = SimulatedHost("broken-r46")
    with pytest.raises(InputError) as info:
        rollback(journal, other, retry=FAST)
    assert str(info.value) == (
        f"journal {journal} is for {host.target}, not {other.target}; roll it back against the "
        "host it was written for"
    )


def test_rollback_gives_every_script_two_minutes_unless_told(tmp_path: Path) -> None:
    host, journal, _ = _applied(tmp_path)
    front = _Host(host)
    result = rollback(journal, front, retry=FAST)  # type: ignore[arg-type]
    assert result.complete
    assert {t for _, t in front.timeouts} == {120.0}
    assert result.journal == str(journal)


def test_a_second_rollback_does_not_restart_again(tmp_path: Path) -> None:
    host, journal, before = _applied(tmp_path)
    first = rollback(journal, host, retry=FAST)
    assert first.restarted
    assert json.loads(Path(journal).read_text())["rollback_restarted"] is True
    front = _Host(host)
    again = rollback(journal, front, retry=FAST)  # type: ignore[arg-type]
    assert again.complete
    assert again.undone == ()
    assert not again.restarted
    assert [n for n, _ in front.timeouts] == ["observe"]  # only the closing comparison
    assert observe(host) == before


class _Drop(_Host):
    """The first reply to the named script is lost (the script ran)."""

    def __init__(self, host: SimulatedHost, name: str, after_restart: bool = False) -> None:
        super().__init__(host)
        self.name, self.after_restart, self.dropped = name, after_restart, False

    def run(self, script: Any, *, timeout: float) -> Any:
        from sectigo_chain.errors import ConnectionFailed

        ready = not self.after_restart or any(n == "restart" for n, _ in self.timeouts)
        if script.name == self.name and ready and not self.dropped:
            self.dropped = True
            self.timeouts.append((script.name, timeout))
            self.host.run(script, timeout=timeout)
            raise ConnectionFailed("connection dropped (test)", host=self.target)
        return super().run(script, timeout=timeout)


def test_the_closing_restart_and_observe_follow_the_rollbacks_retry_policy(
    tmp_path: Path,
) -> None:
    host, journal, _ = _applied(tmp_path)
    result = rollback(journal, _Drop(host, "restart"), retry=FAST)  # type: ignore[arg-type]
    assert not result.restarted
    (error,) = result.errors
    assert error.startswith("restart after rollback: ")
    (tmp_path / "b").mkdir()
    host, journal, _ = _applied(tmp_path / "b")
    front = _Drop(host, "observe", after_restart=True)
    result = rollback(journal, front, retry=FAST)  # type: ignore[arg-type]
    assert result.restarted
    assert not result.checked
    (error,) = result.errors
    assert error.startswith("could not observe the host to check the rollback: ")


@pytest.mark.parametrize(("gone", "more"), [(5, ""), (6, " (and 1 more)"), (7, " (and 2 more)")])
def test_a_host_that_differs_from_before_lists_five_differences_and_counts_the_rest(
    tmp_path: Path, gone: int, more: str
) -> None:
    host, journal, _ = _applied(tmp_path)
    assert rollback(journal, host, retry=FAST).complete
    doc = json.loads(Path(journal).read_text())
    doc["before"]["sites"] += [{"name": f"Gone {i}"} for i in range(1, gone + 1)]
    Path(journal).write_text(json.dumps(doc))
    result = rollback(journal, host, retry=FAST)
    lines = tuple(f"site 'Gone {i}' is missing" for i in range(1, gone + 1))
    assert result.differences == lines
    assert result.errors == (f"the host differs from before apply: {'; '.join(lines[:5])}{more}",)
    assert json.loads(Path(journal).read_text())["status"] == "rollback_incomplete"


class _Interrupted(BaseException):
    """The rollback's process stops (killed, power lost) in the middle of an undo."""


def test_a_staging_choice_is_in_the_journal_file_before_the_staged_copy_is_moved(
    tmp_path: Path,
) -> None:
    host, journal, _ = _applied(tmp_path)

    class Stop(_Host):
        def run(self, script: Any, *, timeout: float) -> Any:
            if script.name == "move_certificate":
                raise _Interrupted
            return super().run(script, timeout=timeout)

    with pytest.raises(_Interrupted):
        rollback(journal, Stop(host), retry=FAST)  # type: ignore[arg-type]
    steps = json.loads(Path(journal).read_text())["steps"]
    # The root removed from Root's .AuthRoot physical store goes back through a staging copy.
    (root,) = [s for s in steps if (s.get("backup") or {}).get("physical_store") == ".AuthRoot"]
    assert root["staging"] == {"store": "CA", "free": True}
    assert root["status"] == "done"  # not yet undone: a resumed rollback moves that copy


def test_a_resumed_staged_restore_uses_the_journaled_store_without_observing() -> None:
    from sectigo_chain.run.journal import _restore, _run_undo

    ((template, params),) = _restore(_der_backup("CurrentUser", "Root"))
    front = _Host(SimulatedHost("fixed"))
    step: dict[str, Any] = {"staging": {"store": "My", "free": True}}
    _run_undo(front, template, params, 30.0, FAST, step, None)  # type: ignore[arg-type]
    assert [n for n, _ in front.timeouts] == ["import_certificate", "move_certificate"]


def _staged(held: list[str], backup: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Restore ``backup`` through staging on a host whose LocalMachine stores ``held`` hold
    the certificate already: the journaled choice and the scripts run after the observe."""
    from sectigo_chain.run.journal import _restore, _run_undo

    host = SimulatedHost("fixed")
    for store in held:
        direct = {k: backup[k] for k in ("der_b64", "thumbprint")}
        _run_undo(host, "import_certificate", {**direct, "store_location": "LocalMachine",
                                               "store_name": store}, 30.0, FAST)  # fmt: skip
    ((template, params),) = _restore(backup)
    front = _Host(host)
    step: dict[str, Any] = {}
    _run_undo(front, template, params, 30.0, FAST, step, None)  # type: ignore[arg-type]
    return step["staging"], [n for n, _ in front.timeouts][1:]


def test_a_staged_restore_takes_the_first_free_store_of_its_preference_list() -> None:
    user_my = _der_backup("CurrentUser", "My")
    assert _staged([], user_my) == ({"store": "My", "free": True},
                                    ["import_certificate", "move_certificate"])  # fmt: skip
    user_root = _der_backup("CurrentUser", "Root")
    assert _staged(["CA", "My"], user_root)[0] == {"store": "WebHosting", "free": True}
    # Every candidate holds it: the copy in the preferred store is moved, not re-imported.
    assert _staged(["CA", "My", "WebHosting"], user_root) == (
        {"store": "CA", "free": False}, ["move_certificate"],
    )  # fmt: skip


def test_a_machine_authroot_copy_is_staged_through_ca() -> None:
    from sectigo_chain.run.journal import _restore

    ((template, params),) = _restore(_der_backup("LocalMachine", "AuthRoot"))
    assert (template, params["staging"]) == ("restore_staged", "CA")


def test_a_failed_undo_names_the_host() -> None:
    from sectigo_chain.errors import ExecutionError
    from sectigo_chain.run.journal import _run_undo

    front = _Refusing(SimulatedHost("fixed"), {"message": "denied"}, [])
    with pytest.raises(ExecutionError) as info:
        _run_undo(front, "set_root_auto_update", {"disabled": None}, 30.0, FAST)  # type: ignore[arg-type]
    assert info.value.host == front.target


def test_undo_of_a_binding_that_had_no_certificate_and_only_sni_removes_it() -> None:
    key = {"site": "S", "ip": "*", "port": 443, "host": "h"}
    sni_only = {"certificate_hash": None, "certificate_store": None, "ssl_flags": 1}
    assert undo_steps(_binding_step(sni_only)) == [("remove_binding", key)]


def test_undo_of_a_ccs_binding_that_got_sni_gives_back_ccs_and_clears_sni() -> None:
    prev = {"certificate_hash": None, "certificate_store": None, "ssl_flags": 2}
    ((template, params),) = undo_steps(_binding_step(prev, flags_set=1, flags_clear=2))
    assert template == "set_binding"
    assert (params["ssl_flags_set"], params["ssl_flags_clear"]) == (2, 1)


def test_a_damaged_journal_is_refused_with_where_and_what_to_do(tmp_path: Path) -> None:
    host, journal, _ = _applied(tmp_path)
    good = json.loads(Path(journal).read_text())
    doc = json.loads(json.dumps(good))
    del doc["steps"][0]["template"]
    Path(journal).write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        rollback(journal, host, retry=FAST)
    text = str(info.value)
    assert text.startswith(f"journal {journal} is damaged (")
    assert text.endswith(
        "); nothing was undone: restore the journal file apply wrote, or roll back by hand "
        "from its steps"
    )
    # A step that never ran is not checked (nor undone); a later step that ran is.
    doc = json.loads(json.dumps(good))
    doc["steps"][0]["status"] = "not_run"
    doc["steps"][0]["params"]["thumbprint"] = "XYZ"
    (user_copy,) = [s for s in doc["steps"]
                    if (s.get("backup") or {}).get("store_location") == "CurrentUser"]  # fmt: skip
    user_copy["backup"]["thumbprint"] = "XYZ"
    Path(journal).write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        rollback(journal, host, retry=FAST)
    text = str(info.value)
    assert text.startswith(
        f"journal {journal} is damaged (step {user_copy['index'] + 1}: its undo does not render: "
    )
    assert text.endswith("); nothing was undone")


def test_a_failed_observe_with_data_is_still_a_failure() -> None:
    from sectigo_chain.errors import ExecutionError
    from sectigo_chain.hosts.base import ScriptResult
    from sectigo_chain.run.journal import _observe_state

    class Partial(_Host):
        def run(self, script: Any, *, timeout: float) -> Any:
            data = self.host.run(script, timeout=timeout).data
            return ScriptResult(ok=False, data=data, errors=["store A unreadable", "store B too"])

    with pytest.raises(ExecutionError) as info:
        _observe_state(Partial(SimulatedHost("fixed")), 30.0, FAST)  # type: ignore[arg-type]
    assert str(info.value) == "observe: store A unreadable; store B too"


def test_observing_a_ccs_host_gives_its_files_the_same_timeout_and_retries() -> None:
    from sectigo_chain.run.journal import _observe_state

    front = _Host(SimulatedHost("ccs-pfx"))
    _observe_state(front, 45.0, FAST)  # type: ignore[arg-type]
    assert front.timeouts == [("observe", 45.0), ("inspect_ccs", 45.0)]
    once = _observe_state(_Drop(SimulatedHost("ccs-pfx"), "inspect_ccs"), 45.0, FAST)  # type: ignore[arg-type]
    assert once.ccs is not None
    assert once.ccs.error is not None
    two = RetryPolicy(attempts=2, wait_initial=0)
    twice = _observe_state(_Drop(SimulatedHost("ccs-pfx"), "inspect_ccs"), 45.0, two)  # type: ignore[arg-type]
    assert twice.ccs is not None
    assert twice.ccs.error is None


def _edited(tmp_path: Path, edit: Any) -> tuple[SimulatedHost, str]:
    host, journal, _ = _applied(tmp_path)
    doc = json.loads(Path(journal).read_text())
    edit(doc)
    Path(journal).write_text(json.dumps(doc))
    return host, journal


def test_a_restart_follows_the_rollback_only_when_a_served_change_may_have_run(
    tmp_path: Path,
) -> None:
    # Only the restart ran (the other steps never reached the host): it is undone by
    # restarting again.
    def only_restart(doc: dict[str, Any]) -> None:
        for s in doc["steps"]:
            if s["template"] != "restart":
                s["status"] = "not_run"

    host, journal = _edited(tmp_path, only_restart)
    assert rollback(journal, host, retry=FAST).restarted

    # The store changes ran, the restart did not: undoing store changes needs no restart.
    def no_restart(doc: dict[str, Any]) -> None:
        for s in doc["steps"]:
            if s["template"] == "restart":
                s["status"] = "not_run"

    (tmp_path / "b").mkdir()
    host, journal = _edited(tmp_path / "b", no_restart)
    result = rollback(journal, host, retry=FAST)
    assert result.undone
    assert not result.restarted

    # A resumed rollback that already restarted: undoing the store changes left does not make
    # another restart due.
    def resumed(doc: dict[str, Any]) -> None:
        doc["rollback_restarted"] = True
        for s in doc["steps"]:
            if s["template"] == "restart":
                s["status"] = "rolled_back"

    (tmp_path / "c").mkdir()
    host, journal = _edited(tmp_path / "c", resumed)
    result = rollback(journal, host, retry=FAST)
    assert result.undone
    assert not result.restarted
