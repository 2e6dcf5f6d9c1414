"""``python -m sectigo_chain``."""

from sectigo_chain.cli.main import console

console()
