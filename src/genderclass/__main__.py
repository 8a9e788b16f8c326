"""``python -m genderclass``: the ``genderclass`` command."""

from .cli.main import main

raise SystemExit(main())
