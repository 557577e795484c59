"""``skinvault public-copy FILE... --out DIR``: public copies for storytelling, on this device.

A thin shell over :func:`skinvault.services.public_copy.public_copy`: every input is
scrubbed, its faces and readable text covered (unless ``--keep-faces`` /
``--keep-text``), re-encoded and written under a new neutral name
(``public-copy.jpg``, ``public-copy-2.jpg``, …) into ``--out``. The inputs are never
modified, and no record of the copies is kept anywhere. Exit codes as for ``scrub``:
0 all done, 1 some files failed (each named), 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from skinvault import scrub_output
from skinvault.errors import SkinvaultError

if TYPE_CHECKING:  # the detectors load only when a public copy is made, not for every command
    from skinvault.services.public_copy import PublicCopy

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command


def _free_name(folder: Path, name: str) -> Path:
    stem, dot, extension = name.rpartition(".")
    candidate, n = folder / name, 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}{dot}{extension}"
    return candidate


def _write(folder: Path, made: PublicCopy) -> Path:
    while True:
        target = _free_name(folder, made.file_name)
        try:
            with target.open("xb") as handle:  # never overwrites a file already there
                handle.write(made.data)
        except FileExistsError:
            continue
        return target


def public_copy_command(
    files: Annotated[list[Path], typer.Argument(help="Photos to copy. Never modified.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the public copies (made if missing).")
    ],
    keep_faces: Annotated[
        bool,
        typer.Option("--keep-faces", help="Leave faces visible (they are covered by default)."),
    ] = False,
    keep_text: Annotated[
        bool,
        typer.Option("--keep-text", help="Leave readable text visible (covered by default)."),
    ] = False,
) -> None:
    """Make a public copy for storytelling: scrubbed, faces and text covered, renamed."""
    from skinvault.services.public_copy import REMINDERS, public_copy  # noqa: PLC0415

    paths, missing = scrub_output.inputs(files)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.print(f"skinvault: {out_dir}: cannot make the folder ({exc.strerror})")
        raise typer.Exit(2) from exc
    failed = [(m.input, m.error or "cannot be read") for m in missing]
    for path in paths:
        try:
            made = public_copy(path.read_bytes(), cover_faces=not keep_faces,
                               cover_text=not keep_text)  # fmt: skip
        except (SkinvaultError, OSError) as exc:
            failed.append((path, str(exc)))
            continue
        target = _write(out_dir, made)
        out.print(f"[bold]{path}[/bold] → {target}")
        out.print(
            f"  {made.faces_found} face(s) and {made.text_found} piece(s) of text found;"
            f" {made.covered} area(s) covered in solid black"
        )
        for note in made.notes:
            out.print(f"  [dim]{note}[/dim]")
        for reminder in made.reminders[: len(made.reminders) - len(REMINDERS)]:
            out.print(f"  [red]{reminder}[/red]")
    if paths and len(failed) < len(paths) + len(missing):
        out.print("[bold]Before you post a copy, look at it: it still shows[/bold]")
        for reminder in REMINDERS:
            out.print(f"  • {reminder}")
    for path, problem in failed:
        err.print(f"[red]skinvault: {path}: {problem}[/red]", soft_wrap=True)
    raise typer.Exit(1 if failed else 0)
