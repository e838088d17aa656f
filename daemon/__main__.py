"""Allow ``python -m daemon`` as a synonym for the ``rosterdrop`` command."""

from daemon.cli import main

main()
