"""Fetch the served chain over TLS (engine, fetch), judge it per client profile (``check``,
``judge``) and report it.

May import: ``x509``, ``trust``, ``errors``, ``logs``.
"""
