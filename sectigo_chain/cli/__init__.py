"""The command line: ``main`` (argparse, stdlib-only at import) and one module per
subcommand under ``cli.commands``.

May import anything in the package; nothing imports it but ``__main__``.
"""
