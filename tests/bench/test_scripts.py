"""Every benchmark also runs as ``python bench/NAME.py``, not only as ``python -m bench.NAME``.

Run as a script, a benchmark's own folder heads ``sys.path``, where ``simulator.py`` and
``scheduler.py`` would shadow the packages of those names. Each module is executed here as the
script would execute it, short of calling its ``main``.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p for p in BENCH.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_a_benchmark_imports_as_a_script(path):
    # What `python bench/NAME.py` does before running it: its folder first on sys.path.
    script = (
        "import runpy, sys\n"
        f"sys.path[0] = {str(BENCH)!r}\n"
        f"runpy.run_path({str(path)!r}, run_name='imported_as_a_script')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
