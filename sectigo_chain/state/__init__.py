"""Desired and observed state (pydantic models), plan models, the recipe (``sectigo_fix``) and
the pure planner with its rules: no I/O, the clock is a parameter.

May import: ``x509``, ``trust``, ``templates`` (action names and parameters), ``errors``, ``logs``.
"""
