# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Action plugin of ``sectigo_chain.iis.chain_check``: judge served chains, as data."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.sectigo_chain.iis.plugins.plugin_utils.common import load_library


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("endpoints", "profiles", "timeout"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        load_library()
        from sectigo_chain.errors import SectigoChainError
        from sectigo_chain.tls.check import check_many, parse_target

        endpoints = args.get("endpoints") or []
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        if not endpoints:
            raise AnsibleActionFail("chain_check needs endpoints: a list of HOST[:PORT]")
        try:
            targets = [parse_target(str(e)) for e in endpoints]
            reports = check_many(
                targets, profiles=args.get("profiles"), timeout=float(args.get("timeout", 10))
            )
        except SectigoChainError as exc:
            raise AnsibleActionFail(str(exc)) from None
        checks = []
        for endpoint, report in zip(endpoints, reports, strict=True):
            doc = report.to_json()
            doc["endpoint"] = endpoint
            checks.append(doc)
        result["changed"] = False
        result["checks"] = checks
        result["verdicts"] = {c["endpoint"]: c.get("verdict", "error") for c in checks}
        result["ok_all"] = all(v == "pass" for v in result["verdicts"].values())
        return result
