"""CLI subcommands; see :mod:`sectigo_chain.cli` for the registration contract."""
