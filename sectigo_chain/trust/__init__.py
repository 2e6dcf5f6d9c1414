"""Client profiles (trust anchors and options) and the packaged, pinned trust-store snapshots;
validation of a served chain as a client would do it.

May import: ``x509``, ``errors``.
"""
