#!/usr/bin/env python3
"""Cartoonize photos and videos with the White-box Cartoonization generator: the command line whitebox.cli.cartoonize (installed as whitebox-cartoonize); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.cartoonize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
