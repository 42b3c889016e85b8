#!/usr/bin/env python3
"""Train and score variants of the training objective: the command line whitebox.cli.ablate (installed as whitebox-ablate); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.ablate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
