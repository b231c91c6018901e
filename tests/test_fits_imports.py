"""`fits` (and so `plan-fit`) never imports torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fits


def test_importing_fits_and_its_cli_loads_no_torch() -> None:
    code = (
        "import sys, fits, fits.cli, fits.plots, fits.pipeline, fits.synthetic\n"
        "bad = sorted(m for m in ('torch', 'transformers', 'optuna') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_module_of_fits_mentions_torch_or_transformers_imports() -> None:
    folder = Path(fits.__file__).parent
    for path in folder.glob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                assert "torch" not in stripped and "transformers" not in stripped, (path, line)
