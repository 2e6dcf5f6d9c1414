"""The one road into PowerShell: render static templates with one encoded payload, the
parameter models, standalone scripts for operators, and the single quoting function.

May import: ``errors``, ``logs``.
"""
