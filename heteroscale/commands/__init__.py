"""One module per ``heteroscale`` subcommand; each exposes ``register(subparsers)``.

A command module adds its parser and sets ``handler``, a function of the parsed arguments that
returns the exit code. Import heavy libraries (dagster) inside the handler, so ``--help`` and the
other commands stay fast.
"""
