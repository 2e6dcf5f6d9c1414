#!/usr/bin/python
# Copyright: sectigo_chain developers; MIT licence (see galaxy.yml)
"""Documentation of sectigo_chain.iis.chain_check (the work is done by its action plugin)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chain_check
short_description: Judge the certificate chain servers send, per client profile
version_added: "0.1.0"
description:
  - Fetches the chain each endpoint serves over TLS (from the controller) and judges it with
    client profiles (C(legacy), C(modern), dated trust stores such as C(android-14)), with
    stable finding codes such as C(SHORT_CHAIN_R46). Changes nothing; the result is data for
    C(assert).
options:
  endpoints:
    description: Endpoints as C(HOST) or C(HOST:PORT).
    type: list
    elements: str
    required: true
  profiles:
    description: Client profiles (default legacy and modern).
    type: list
    elements: str
  timeout:
    description: Seconds per endpoint.
    type: float
    default: 10
author:
  - sectigo_chain developers
"""

EXAMPLES = r"""
- name: Check the served chain
  sectigo_chain.iis.chain_check:
    endpoints: ["www.example.com:443"]
    profiles: [legacy, android-14]
  register: served
  delegate_to: localhost

- name: Old clients must validate it
  ansible.builtin.assert:
    that: served.ok_all
"""

RETURN = r"""
checks:
  description: One report per endpoint (served chain, findings, verdict per profile).
  type: list
  elements: dict
  returned: always
verdicts:
  description: Endpoint to verdict (pass, warn, fail, error).
  type: dict
  returned: always
ok_all:
  description: Every endpoint passed.
  type: bool
  returned: always
"""


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.fail_json(msg="chain_check runs on the controller as an action plugin")


if __name__ == "__main__":
    main()
