"""``python -m failwise.cli``: the same command line as the ``failwise`` script."""

from failwise.cli import main

main()
