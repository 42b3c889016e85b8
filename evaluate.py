#!/usr/bin/env python3
"""FID and KID: folders, caches and the paper's protocol: the command line whitebox.cli.evaluate (installed as whitebox-evaluate); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
