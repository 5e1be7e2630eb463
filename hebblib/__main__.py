"""``python -m hebblib``: see :mod:`hebblib.cli`."""
from .cli import main

raise SystemExit(main())
