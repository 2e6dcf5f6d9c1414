"""One renderer for every report: terminal text, Markdown, HTML (Jupyter and the fleet
page), chain pictures and progress. Reports are data; this package renders them.

May import: ``fleet`` and everything below it.
"""
