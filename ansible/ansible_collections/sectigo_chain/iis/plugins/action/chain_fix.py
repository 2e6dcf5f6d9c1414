# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Action plugin of ``sectigo_chain.iis.chain_fix``: the whole R46/E46 fix for one IIS site.

Runs on the controller: plan (check mode), or plan + apply (journal, automatic rollback) +
verify, through the sectigo_chain library. See the module documentation.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.sectigo_chain.iis.plugins.plugin_utils.common import (
    host_catalog,
    host_target,
    load_library,
    winrm_password,
)

SETTINGS = (
    "site", "hostname", "ip", "port", "sni", "pfx", "strategy", "restart",
    "allow_group_policy", "profiles", "timeout",
)  # fmt: skip


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset((*SETTINGS, "pfx_password", "journal_dir", "target"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        library = load_library()
        from sectigo_chain.errors import SectigoChainError

        if args.get("target"):
            task_vars = {**task_vars, "sectigo_chain_target": args["target"]}
        entry = host_target(task_vars, self._templar)
        for key in SETTINGS:
            if args.get(key) is not None:
                entry[key] = args[key]
        mode = "plan" if self._play_context.check_mode else "apply"
        try:
            outcome = library.run_task(
                entry,
                mode,
                winrm_password=winrm_password(task_vars, self._templar),
                pfx_password=args.get("pfx_password"),
                journal_dir=args.get("journal_dir"),
                diff=bool(self._play_context.diff),
                catalog=host_catalog(task_vars, self._templar),
            )
        except SectigoChainError as exc:  # bad input; host problems come back as failed
            raise AnsibleActionFail(str(exc)) from None
        result.update(outcome)
        row = outcome["row"]
        result["plan"] = row["actions"]
        result["journal"] = row.get("journal")
        result["verdicts"] = {
            "before": (row.get("before") or {}).get("verdict"),
            "after": (row.get("after") or {}).get("verdict"),
            "verify": row.get("verify"),
        }
        return result
