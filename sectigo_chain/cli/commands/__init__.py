"""CLI subcommands; see :mod:`sectigo_chain.cli.main` for the registration contract."""
