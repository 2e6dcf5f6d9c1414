"""``python -m sectigo_chain``."""

from sectigo_chain.cli.main import main

raise SystemExit(main())
