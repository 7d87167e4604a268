"""``python -m mqlog.cli``: the ``mqlog`` command without its console script."""

from mqlog.cli import main

main()
