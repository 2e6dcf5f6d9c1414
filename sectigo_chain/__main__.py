"""``python -m sectigo_chain``."""

from sectigo_chain.cli import main

raise SystemExit(main())
