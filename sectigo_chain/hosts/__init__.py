"""The executor seam: the protocol and ``ScriptResult`` (``base``), the local and WinRM
executors, target parsing and retries; ``hosts.sim`` is the simulated IIS host.

May import: ``templates``, ``state``, ``x509``, ``trust``, ``tls`` (the simulated listener),
``errors``, ``logs``, and ``testing.lab`` (the simulated host builds its lab certificates).
"""
