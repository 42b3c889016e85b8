#!/usr/bin/env python3
"""Cartoonize every image a Beam filesystem glob matches: the command line whitebox.cli.cartoonize_beam (installed as whitebox-beam); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.cartoonize_beam import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
