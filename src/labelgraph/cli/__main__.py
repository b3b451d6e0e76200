"""``python -m labelgraph.cli ...`` is the ``labelgraph`` command."""

from labelgraph.cli import main

raise SystemExit(main())
