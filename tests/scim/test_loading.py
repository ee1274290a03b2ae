"""The SCIM models (about a second to import) load on the first SCIM request of a process: the
app and every command line start without them (why ``accessd/web/scim.py`` imports the server
inside a function)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_app_and_the_command_line_start_without_the_scim_models():
    code = "import sys, accessd, accessd.cli; print('scim2_models' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
