"""Pure certificate knowledge: loading (PEM/DER/P7B/PFX), facts, the Sectigo catalog, path
building and the Windows served-chain prediction, chain analysis and findings, ``inspect``.

May import: ``sectigo_chain.errors`` and ``sectigo_chain.logs`` only. No I/O but reading files.
"""
