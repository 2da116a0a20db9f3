#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path


def main() -> None:
    # platform/ is an import root (never a package: a platform/__init__.py would shadow the
    # standard library module). Insert it right after the repository root so that `config`
    # resolves here even before `pip install -e .`, and a stray installed `config` cannot win.
    root = Path(__file__).resolve().parent
    sys.path.insert(1, str(root / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
