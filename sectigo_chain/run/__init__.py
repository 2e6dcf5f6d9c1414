"""Apply a plan (journal, backups, rollback) and verify the result (re-observe, on-host chain,
served chain over TLS, the restart ladder).

May import: ``hosts``, ``tls``, ``state``, ``templates``, ``trust``, ``x509``, ``errors``, ``logs``.
"""
