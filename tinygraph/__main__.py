"""`python -m tinygraph ...`: the same as the `tinygraph` command."""

from .cli import main

raise SystemExit(main())
