"""`python -m devstack up|down` (devstack.cli)."""

from devstack.cli import main

raise SystemExit(main())
