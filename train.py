#!/usr/bin/env python3
"""Pretrain and train the white-box cartoonization generator: the command line whitebox.cli.train (installed as whitebox-train); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
