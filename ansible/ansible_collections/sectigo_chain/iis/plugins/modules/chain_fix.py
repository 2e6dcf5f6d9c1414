#!/usr/bin/python
# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Documentation of sectigo_chain.iis.chain_fix (the work is done by its action plugin)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chain_fix
short_description: Fix the Sectigo R46/E46 chain an IIS site serves, and prove it
version_added: "0.1.0"
description:
  - Makes Windows serve the long chain (leaf, R36/E36, cross-signed R46/E46) that clients
    without the R46/E46 roots need, for one IIS site. It imports the cross-signed R46/E46 into
    LocalMachine\CA, removes the self-signed R46/E46 from LocalMachine\Root (backed up first),
    optionally imports a PFX and binds it, restarts IIS, then verifies the served chain.
  - Runs on the controller (an action plugin) with the C(sectigo_chain) Python library, which
    must be installed in the controller's Python (C(pip install sectigo-chain)). It reaches the
    host over WinRM from the host's own connection variables (C(ansible_host),
    C(ansible_port), C(ansible_user), C(ansible_password), C(ansible_winrm_transport),
    C(ansible_winrm_server_cert_validation), C(ansible_winrm_ca_trust_path)), or from the host
    variable C(sectigo_chain_target) (for example C(sim://broken-r46) to rehearse on the
    simulated host).
  - The served chain is fetched over TLS from the binding's address on the host, or from the
    host variable C(sectigo_chain_check) (C(HOST:PORT), or a mapping with C(host), C(port),
    C(servername)) when the site is reached elsewhere (a load balancer, a test endpoint).
  - Rehearsal host variables. C(sectigo_chain_sim_state) names a file on the controller that
    keeps a C(sim://) host's state between tasks and runs, so a second run finds the host as
    the first left it (the file holds the simulated host's private keys; rehearse with lab
    material). C(sectigo_chain_catalog=lab) judges the host with the lab CA catalog of
    C(sectigo_chain.testing) instead of the real Sectigo certificates (a loopback WinRM
    endpoint whose simulated host holds the pinned lab hierarchy).
  - Every change is written to a journal (backups first) before it is made; a failed change
    is rolled back automatically. A second run changes nothing.
  - Check mode plans only (C(changed) when the plan is not empty); diff mode shows the
    certificate stores and bindings before and after.
options:
  site:
    description: The IIS site.
    type: str
    default: Default Web Site
  hostname:
    description: Host header of the https binding (turns SNI on).
    type: str
  ip:
    description: Binding IP address.
    type: str
    default: "*"
  port:
    description: Binding port.
    type: int
    default: 443
  sni:
    description: Require SNI (default on when I(hostname) is set).
    type: bool
  pfx:
    description: Path, on the controller, of a PFX (leaf and private key) to import and bind.
    type: path
  pfx_password:
    description: Password of I(pfx). Pass it from a vaulted variable; it is never logged.
    type: str
  strategy:
    description: How the self-signed root is kept out of the served chain.
    type: str
    choices: [remove, remove_and_disallow, disable_auto_update]
    default: remove
  restart:
    description: How the served chain is refreshed after a change.
    type: str
    choices: [iisreset, recycle, none]
    default: iisreset
  allow_group_policy:
    description: Proceed although the self-signed root is pushed by Group Policy.
    type: bool
    default: false
  profiles:
    description: Client profiles the served chain is judged with.
    type: list
    elements: str
    default: [legacy, modern]
  journal_dir:
    description: Controller folder for the apply journals (default C(sectigo-chain-journals)).
    type: path
  target:
    description: Override the target (C(winrm://user@host:port), C(sim://SCENARIO), C(local)).
    type: str
notes:
  - The controller needs C(sectigo-chain); the Windows host needs nothing but WinRM and
    Windows PowerShell 5.1.
  - Importing a PFX over WinRM needs CredSSP, Kerberos delegation or a SYSTEM context on some
    hosts (the double hop); see the library's docs/remote.md.
author:
  - sectigo_chain developers
"""

EXAMPLES = r"""
- name: Fix the served chain of the default site (check mode first with --check)
  sectigo_chain.iis.chain_fix:
    site: Default Web Site

- name: Import and bind a new certificate, then fix the chain
  sectigo_chain.iis.chain_fix:
    site: Shop
    hostname: shop.example.com
    pfx: files/shop.pfx
    pfx_password: "{{ vault_shop_pfx_password }}"
  no_log: true
"""

RETURN = r"""
changed:
  description: The plan was not empty (check mode) or the host was changed.
  type: bool
  returned: always
status:
  description: planned, applied, unchanged, failed or rolled_back.
  type: str
  returned: always
plan:
  description: The actions, each with its kind and the reason for it.
  type: list
  elements: dict
  returned: always
journal:
  description: Path of the apply journal on the controller (for sectigo-chain rollback).
  type: str
  returned: when something was applied
verdicts:
  description: Served-chain verdicts before and after, and the verification's.
  type: dict
  returned: always
row:
  description: Everything the run learned about the host (the fleet report row).
  type: dict
  returned: always
"""


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.fail_json(msg="chain_fix runs on the controller as an action plugin")


if __name__ == "__main__":
    main()
