"""What ``skinvault scrub`` prints, shared by the full CLI and its start-up fast path.

Rich is imported only when a table is printed, so a ``--json`` run never loads it.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from skinvault.batch import FileResult, InputError, collect

DEFAULT_TEMPLATE = "photo-{n:03}"
DEFAULT_SITE = "photo"
EXIT_OK, EXIT_SOME_FAILED = 0, 1


def name_template(template: str, site: str) -> str:
    """The default names carry the body site when one is given (``left-hand-001.jpg``)."""
    if template == DEFAULT_TEMPLATE and site != DEFAULT_SITE:
        return "{site}-{n:03}"
    return template


def inputs(paths: list[Path]) -> tuple[list[Path], list[FileResult]]:
    files: list[Path] = []
    missing: list[FileResult] = []
    for item in collect(paths):
        if isinstance(item, InputError):
            missing.append(
                FileResult(Path(str(item).split(":", 1)[0]), error="no such file or folder")
            )
        else:
            files.append(item)
    return files, missing


def json_result(r: FileResult) -> dict[str, object]:
    entry: dict[str, object] = {
        "input": str(r.input),
        "output": str(r.output) if r.output else None,
    }
    if r.report is not None:
        entry.update(
            format=r.report.format.value,
            lossless=r.report.lossless,
            notes=list(r.report.notes),
            findings=[
                {"category": f.category.value, "description": f.description}
                for f in r.report.findings
            ],
        )
        if r.redacted is not None:
            entry["redacted"] = [
                {"kind": c.kind, "box": list(c.box), "covered": list(c.covered)} for c in r.redacted
            ]
    else:
        entry["error"] = r.error
    return entry


def _shown(paths: list[Path | None]) -> list[str]:
    """Paths relative to their common folder: the part that tells rows apart."""
    real = [str(p) for p in paths if p is not None]
    if len(real) < 2:
        return ["" if p is None else str(p) for p in paths]
    base = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in real])
    return [
        "" if p is None else os.path.relpath(os.path.abspath(p), base) if base != "/" else str(p)
        for p in paths
    ]


def _rows(results: list[FileResult]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    inputs_shown = _shown([r.input for r in results])
    outputs_shown = _shown([r.output for r in results])
    for r, shown_in, shown_out in zip(results, inputs_shown, outputs_shown, strict=True):
        if r.report is None:
            rows.append((shown_in, "failed", "", "", r.error or ""))
            continue
        counts = Counter(f.category.value for f in r.report.findings)
        removed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
        lossless = "yes" if r.report.lossless else "no (re-encoded)"
        rows.append((shown_in, shown_out, r.report.format.value, lossless, removed))
    return rows


_COLUMNS = ("input", "output", "format", "lossless", "removed")


def print_summary(results: list[FileResult], console: Any = None) -> None:
    """The summary table: drawn by Rich on a terminal, plain aligned text into a pipe or file
    (the same rows, without Rich's cost, which is a second per few hundred rows)."""
    rows = _rows(results)
    done = sum(r.ok for r in results)
    if console is None and not sys.stdout.isatty():
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_COLUMNS)]
        lines = ["skinvault scrub"]
        for row in ((*_COLUMNS,), *rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        lines.append(f"{done} of {len(results)} files scrubbed.")
        sys.stdout.write("\n".join(lines) + "\n")
        return
    from rich.console import Console  # noqa: PLC0415 - only when a table is drawn
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    out = console or Console(highlight=False)
    table = Table(title="skinvault scrub", title_justify="left")
    for column in _COLUMNS:
        # Paths fold onto more lines rather than being cut to a shared prefix.
        table.add_column(column, overflow="fold")
    for row in rows:
        cells = [escape(v) for v in row]
        if row[1] == "failed" and row[2] == "":
            cells[1] = "[red]failed[/red]"
        table.add_row(*cells)
    out.print(table)
    out.print(f"{done} of {len(results)} files scrubbed.")


def report_errors(results: list[FileResult], console: Any = None) -> int:
    failed = [r for r in results if not r.ok]
    for r in failed:
        if console is not None:
            console.print(f"[red]skinvault: {r.input}: {r.error}[/red]", soft_wrap=True)
        else:
            print(f"skinvault: {r.input}: {r.error}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
