"""interop/ is pure: it builds resources and files from facts and imports no web, ORM or service."""

from __future__ import annotations

import ast
import sys

import skinvault
from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "skinvault" / "interop"
OURS = (
    "skinvault.errors",
    "skinvault.interop",
    "skinvault.policy.purposes",
    "skinvault.tracking",
    "skinvault.photos.limits",  # the one gate every photo is opened through (pure)
)
THIRD_PARTY = {"PIL", "pillow_heif", "pydicom", "pynetdicom"}


def test_interop_imports_only_pure_code() -> None:
    assert skinvault.__version__
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "skinvault":
                    assert name == "skinvault" or name.startswith(OURS), f"{module.name}: {name}"
                else:
                    assert top in sys.stdlib_module_names or top in THIRD_PARTY, (
                        f"{module.name}: {name}"
                    )
