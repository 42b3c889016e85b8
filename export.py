#!/usr/bin/env python3
"""Export the cartoonizer as SavedModel, TFLite or ONNX: the command line whitebox.cli.export (installed as whitebox-export); see --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
from whitebox.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
