"""`python -m gateway.simulator [simulate] --url ... --profile zappi` for manual testing."""

from .cli import main

raise SystemExit(main())
