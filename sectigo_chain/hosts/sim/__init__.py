"""The simulated IIS host: the in-memory Windows model, the template handlers, named
scenarios and a real TLS listener on 127.0.0.1. A model built from public documentation, not
Windows.

May import what ``hosts`` may import.
"""
