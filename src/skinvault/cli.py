"""The ``skinvault`` command line: a thin shell over :mod:`skinvault.batch`.

Exit codes: 0 everything done; 1 some files failed (each named with the reason,
the others still processed); 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skinvault import __version__, scrub_output
from skinvault.admin_cli import admin_app, audit_app
from skinvault.backup_cli import backup_command, restore_command
from skinvault.batch import (
    REDACT_KINDS,
    ClueResult,
    Destination,
    Edit,
    FileResult,
    clues_of_file,
    inspect_file,
    scrub_files,
)
from skinvault.export_cli import export_app
from skinvault.governance_cli import privacy_app, retention_app
from skinvault.jobs_cli import jobs_app, status_command, worker_command
from skinvault.photos.findings import CATEGORY_TITLES
from skinvault.photos.naming import TemplateError
from skinvault.public_copy_cli import public_copy_command
from skinvault.service_cli import serve
from skinvault.tracking_cli import align, measure
from skinvault.users_cli import users_app

app = typer.Typer(
    name="skinvault",
    help="Share skin photos without leaking more than the clinical question needs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EXIT_OK, EXIT_SOME_FAILED = 0, 1
admin_app.add_typer(users_app, name="users")
admin_app.command("backup")(backup_command)
admin_app.command("restore")(restore_command)
admin_app.command("jobs")(status_command)
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")
app.add_typer(export_app, name="export")
app.command("serve")(serve)
app.command("worker")(worker_command)
app.add_typer(jobs_app, name="jobs")
app.command("align")(align)
app.command("measure")(measure)
app.command("public-copy")(public_copy_command)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command


def _version(value: bool) -> None:
    if value:
        print(f"skinvault {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Inspect and scrub photos before they leave your device."""


def _inputs(paths: list[Path]) -> tuple[list[Path], list[FileResult]]:
    return scrub_output.inputs(paths)


def _report_errors(results: list[FileResult]) -> int:
    return scrub_output.report_errors(results, err)


@app.command("inspect")
def inspect_command(
    files: Annotated[list[Path], typer.Argument(help="Photos to inspect. Never modified.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show what photos reveal beyond their pixels, in plain language."""
    paths, results = _inputs(files)
    results = [inspect_file(p) for p in paths] + results
    if as_json:
        payload = []
        for r in results:
            entry: dict[str, object] = {"input": str(r.input)}
            if r.report is not None:
                entry["format"] = r.report.format.value
                entry["findings"] = [f.as_json() for f in r.report.findings]
            else:
                entry["error"] = r.error
            payload.append(entry)
        print(json.dumps({"files": payload}, ensure_ascii=False, indent=2))
    else:
        for r in results:
            if r.report is not None:
                _print_findings(r)
    raise typer.Exit(_report_errors(results))


def _print_findings(result: FileResult) -> None:
    assert result.report is not None
    report = result.report
    out.print(f"[bold]{result.input}[/bold] ({report.format.value.upper()})")
    if not report.findings:
        out.print("  Nothing found beyond the pixels.\n")
        return
    for category, title in CATEGORY_TITLES.items():
        items = [f for f in report.findings if f.category == category]
        if items:
            out.print(f"  [bold yellow]{title}[/bold yellow]")
            for f in items:
                out.print(f"    • {f.description} [dim]({f.where})[/dim]", soft_wrap=True)
    out.print()


@app.command("scrub")
def scrub_command(
    paths: Annotated[list[Path], typer.Argument(help="Photos or folders (searched recursively).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the scrubbed copies.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace each input with its scrubbed version.")
    ] = False,
    name_template: Annotated[
        str,
        typer.Option(
            help="Neutral output name; placeholders {n} and {site}, e.g. '{site}-{n:02}'."
        ),
    ] = "photo-{n:03}",
    site: Annotated[
        str,
        typer.Option(help="Body site, e.g. 'left hand': used in the default names and for {site}."),
    ] = "photo",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report to stdout.")] = False,
    redact: Annotated[
        str | None,
        typer.Option(
            help="Find and cover these clues in the pixels: 'faces', 'text' or 'faces,text'."
        ),
    ] = None,
    crop: Annotated[
        str | None,
        typer.Option(help="Keep only this region, 'x,y,w,h' in pixels of the upright photo."),
    ] = None,
    blur: Annotated[
        bool, typer.Option("--blur", help="With --redact: blur heavily instead of filling.")
    ] = False,
) -> None:
    """Remove identifying metadata, writing neutral-named copies (or replacing in place)."""
    if (out_dir is None) == (not in_place):
        raise typer.BadParameter("give exactly one of --out DIR or --in-place")
    edit = _edit(redact, crop, blur)
    if edit is not None and in_place:
        raise typer.BadParameter(
            "--redact and --crop change pixels for good: use --out DIR so the original stays"
        )
    name_template = scrub_output.name_template(name_template, site)
    try:
        dest = (
            Destination.folder(out_dir, name_template, site) if out_dir else Destination.in_place()
        )
    except TemplateError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name-template") from exc
    files, results = _inputs(paths)
    results = _scrub_all(files, dest, show_progress=not as_json, edit=edit) + results
    if as_json:
        print(
            json.dumps({"files": [_json_result(r) for r in results]}, ensure_ascii=False, indent=2)
        )
    else:
        _print_summary(results)
    raise typer.Exit(_report_errors(results))


def _edit(redact: str | None, crop: str | None, blur: bool) -> Edit | None:
    """The pixel edits asked for, or None for the lossless metadata-only scrub."""
    if redact is None and crop is None:
        if blur:
            raise typer.BadParameter("--blur only applies with --redact")
        return None
    kinds: set[str] = set()
    for raw in redact.split(",") if redact is not None else []:
        name = raw.strip().lower()
        if name not in REDACT_KINDS:
            raise typer.BadParameter(
                f"unknown clue {name!r}; use faces, text or faces,text", param_hint="--redact"
            )
        kinds.add(REDACT_KINDS[name])
    box = None
    if crop is not None:
        try:
            x, y, w, h = (int(v) for v in crop.split(","))
        except ValueError:
            raise typer.BadParameter(
                f"{crop!r} is not x,y,w,h (four whole numbers)", param_hint="--crop"
            ) from None
        if x < 0 or y < 0 or w <= 0 or h <= 0:
            raise typer.BadParameter(
                f"{crop!r}: x and y must be ≥ 0, width and height > 0", param_hint="--crop"
            )
        box = (x, y, w, h)
    return Edit(frozenset(kinds), box, "blur" if blur else "fill")


def _scrub_all(
    files: list[Path], dest: Destination, *, show_progress: bool, edit: Edit | None = None
) -> list[FileResult]:
    if not show_progress or len(files) < 2:
        return scrub_files(files, dest, edit=edit)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    # No refresh thread (auto_refresh=False): the batch forks worker processes,
    # and forking while another thread runs is unsafe.
    with Progress(
        TextColumn("Scrubbing"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("scrub", total=len(files))

        def advance(_: FileResult) -> None:
            progress.advance(task)
            progress.refresh()

        return scrub_files(files, dest, on_done=advance, edit=edit)


def _json_result(r: FileResult) -> dict[str, object]:
    return scrub_output.json_result(r)


def _print_summary(results: list[FileResult]) -> None:
    scrub_output.print_summary(results, out)


@app.command("clues")
def clues_command(
    files: Annotated[list[Path], typer.Argument(help="Photos to look at. Never modified.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    preview: Annotated[
        Path | None,
        typer.Option(
            "--preview",
            help="Folder for copies with the boxes drawn (neutral names, no metadata).",
        ),
    ] = None,
) -> None:
    """Find faces and readable text in the pixels: what metadata scrubbing cannot remove."""
    paths, missing = _inputs(files)
    dest = Destination.folder(preview, "clues-{n:03}") if preview is not None else None
    results = [clues_of_file(p, dest) for p in paths]
    results += [ClueResult(m.input, error=m.error) for m in missing]
    if as_json:
        payload = []
        for r in results:
            entry: dict[str, object] = {"input": str(r.input)}
            if r.ok:
                entry["clues"] = [
                    {"kind": c.kind, "box": list(c.box), "score": round(c.score, 3)}
                    for c in r.clues
                ]
                if r.preview is not None:
                    entry["preview"] = str(r.preview)
            else:
                entry["error"] = r.error
            payload.append(entry)
        print(json.dumps({"files": payload}, ensure_ascii=False, indent=2))
    else:
        for r in results:
            if r.ok:
                _print_clues(r)
    failed = [r for r in results if not r.ok]
    for r in failed:
        err.print(f"[red]skinvault: {r.input}: {r.error}[/red]", soft_wrap=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _print_clues(result: ClueResult) -> None:
    out.print(f"[bold]{result.input}[/bold]")
    if not result.clues:
        out.print("  No faces or readable text found.")
    for c in result.clues:
        x, y, w, h = c.box
        out.print(f"  • {c.kind} at x={x} y={y}, {w} × {h} px (score {c.score:.2f})")
    if result.preview is not None:
        out.print(f"  [dim]boxes drawn in {result.preview}[/dim]")
    out.print()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("skinvault: interrupted; files written so far are complete, none is partial")
        sys.exit(130)
