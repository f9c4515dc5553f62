"""The worker's lower OS priority (issue 16 §0): raised in a child, never fatal, torch-free to import."""
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_lower_priority_raises_niceness_and_imports_no_torch() -> None:
    code = ("import os, sys; from engine.core.priority import lower_priority; before = os.nice(0); "
            "after = lower_priority(3); print(after - before, 'torch' in sys.modules, lower_priority(0))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "False", "None"]  # the worker opens its database before torch loads
