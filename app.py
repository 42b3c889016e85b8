#!/usr/bin/env python3
"""The local web page (Gradio): the command line whitebox.cli.app (installed as whitebox-web); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
