"""``skinvault align`` and ``skinvault measure``: the tracking tools on files, no vault needed.

    $ skinvault align before.jpg after.jpg --out after-aligned.jpg --json
    $ skinvault measure visit1.jpg visit2.jpg --region 100,80,900,700 --json
    $ skinvault measure visit1.jpg --exclude 0,0,300,200 --exclude 900,0,124,200

Exit codes: 0 done; 1 a file could not be read or aligned/measured (named, others
still done); 2 usage error. ``align`` exits 0 with ``"confident": false`` when the
pair cannot be aligned: that is an answer, not a failure, and no warp is written; so does
``measure`` for a photo it does not measure (overexposed skin, too little skin):
``"depigmented_percent": null`` and the first note says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from skinvault.errors import SkinvaultError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never cut a path or command


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SkinvaultError(f"cannot be read: {exc.strerror or exc}") from exc


def align(
    reference: Annotated[Path, typer.Argument(help="The earlier photo (its frame is kept).")],
    moving: Annotated[Path, typer.Argument(help="The later photo, to be mapped onto REFERENCE.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write MOVING warped onto REFERENCE (JPEG).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Align two photos of the same site; say so when they cannot be aligned."""
    from skinvault.tracking import align as al

    decoded = []
    for path in (reference, moving):
        try:
            decoded.append(al.decode(_read(path)))
        except SkinvaultError as exc:
            err.print(f"skinvault align: {path}: {exc}")
            raise typer.Exit(1) from exc
    ref, mov = decoded
    result = al.align(ref, mov)
    if out_file is not None and result.confident:
        out_file.write_bytes(al.encode_jpeg(al.warp(mov, result, ref.shape)))
    if as_json:
        print(json.dumps(result.as_json()))
        return
    if result.confident:
        out.print(f"aligned: {result.inliers} matching points agree")
        if out_file is not None:
            out.print(f"wrote {out_file}")
    else:
        out.print(f"not aligned: {result.reason} - compare the photos side by side")


def _region(text: str | None, what: str = "the region") -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"give {what} as x,y,w,h in pixels") from exc
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise typer.BadParameter(f"{what} needs x,y >= 0 and w,h > 0")
    return (x, y, w, h)


def measure(
    files: Annotated[list[Path], typer.Argument(help="Photos to measure.")],
    region: Annotated[
        str | None, typer.Option("--region", help="Only inside x,y,w,h (pixels, upright photo).")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Leave out x,y,w,h (hair, clothing, background); repeat for several parts.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Share of skin, and of that skin depigmented - a measurement aid, not a diagnosis."""
    from skinvault.tracking import align as al
    from skinvault.tracking import measure as me

    box = _region(region)
    left_out = [b for t in exclude or [] if (b := _region(t, "a part to leave out"))]
    results: list[dict[str, object]] = []
    failed = False
    for path in files:
        try:
            m, _ = me.measure(al.decode(_read(path)), region=box, exclude=left_out)
        except SkinvaultError as exc:
            failed = True
            results.append({"input": str(path), "error": str(exc)})
            continue
        results.append({"input": str(path), **m.as_json()})
    if as_json:
        print(json.dumps({"files": results}))
    else:
        for r in results:
            if "error" in r:
                err.print(f"{r['input']}: {r['error']}")
            elif r["depigmented_percent"] is None:
                notes = r["notes"]
                assert isinstance(notes, list)
                reason = me.not_measured_reason(notes) or "not measured"
                out.print(f"{r['input']}: {reason} ({r['method']})")
            else:
                out.print(
                    f"{r['input']}: skin {r['skin_percent']} % of the area, "
                    f"depigmented {r['depigmented_percent']} % of the skin ({r['method']})"
                )
        out.print("A measurement aid, not a diagnosis.")
    if failed:
        raise typer.Exit(1)
