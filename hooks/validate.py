#!/usr/bin/env python3
"""Validate a rendered CCO repository: `python hooks/validate.py PATH [--level none|quick|full] [--strict]`.

Copier runs it after `copier copy` (a task) and after `copier update` (a migration that runs
on every update, once, in the real project after the merge); see ARCHITECTURE.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cco_validate.runner import main

if __name__ == "__main__":
    sys.exit(main())
