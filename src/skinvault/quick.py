"""The ``skinvault`` entry point, with a start-up fast path for a plain ``scrub``.

Typer, Rich and every other command's imports (database, web server, numpy)
cost more than scrubbing a batch of photos. A lossless ``skinvault scrub``
whose options are all plain (``--out``/``-o``, ``--in-place``,
``--name-template``, ``--site``, ``--json``) runs here with only the scrubber
loaded; anything else — another command, ``--help``, ``--redact``, a usage
error, or a terminal watching (for the progress bar) — goes to the full CLI
(:mod:`skinvault.cli`), which prints the same report and errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

_VALUED = {"--out": "out", "-o": "out", "--name-template": "template", "--site": "site"}
_FLAGS = {"--in-place": "in_place", "--json": "json"}


def _plan(argv: list[str]) -> dict[str, object] | None:
    """The options of a plain lossless scrub, or None to let the full CLI handle ``argv``."""
    if not argv or argv[0] != "scrub":
        return None
    plan: dict[str, object] = {"paths": [], "in_place": False, "json": False}
    args = iter(argv[1:])
    only_paths = False
    for arg in args:
        if only_paths or not arg.startswith("-") or arg == "-":
            plan["paths"].append(Path(arg))  # type: ignore[attr-defined]
        elif arg == "--":
            only_paths = True
        elif arg in _FLAGS:
            plan[_FLAGS[arg]] = True
        elif arg.split("=", 1)[0] in _VALUED:
            name, eq, value = arg.partition("=")
            if not eq:
                value = next(args, "")
                if not value or value.startswith("-"):
                    return None  # a missing value: the full CLI says so
            key = _VALUED[name]
            if key in plan:
                return None
            plan[key] = value
        else:
            return None
    if not plan["paths"] or ("out" in plan) == bool(plan["in_place"]):
        return None
    return plan


def _scrub(plan: dict[str, object]) -> int:
    from skinvault import scrub_output  # noqa: PLC0415 - after the fast-path decision
    from skinvault.batch import Destination, scrub_files  # noqa: PLC0415
    from skinvault.photos.naming import TemplateError  # noqa: PLC0415

    site = str(plan.get("site", scrub_output.DEFAULT_SITE))
    template = scrub_output.name_template(
        str(plan.get("template", scrub_output.DEFAULT_TEMPLATE)), site
    )
    out = plan.get("out")
    try:
        dest = Destination.folder(Path(str(out)), template, site) if out else Destination.in_place()
    except TemplateError:
        return -1
    paths: list[Path] = plan["paths"]  # type: ignore[assignment]
    files, missing = scrub_output.inputs(paths)
    results = scrub_files(files, dest) + missing
    if plan["json"]:
        import json  # noqa: PLC0415

        report = {"files": [scrub_output.json_result(r) for r in results]}
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return scrub_output.report_errors(results)
    scrub_output.print_summary(results)
    if all(r.ok for r in results):
        return scrub_output.EXIT_OK  # nothing to print: Rich (15 ms to import) stays unloaded
    from rich.console import Console  # noqa: PLC0415

    return scrub_output.report_errors(results, Console(stderr=True, highlight=False))


def main() -> None:
    """Console-script entry point."""
    plan = _plan(sys.argv[1:])
    if plan is not None and not plan["json"] and sys.stderr.isatty():
        plan = None  # someone is watching: the full CLI shows a progress bar
    if plan is not None:
        try:
            code = _scrub(plan)
        except KeyboardInterrupt:
            print(
                "skinvault: interrupted; files written so far are complete, none is partial",
                file=sys.stderr,
            )
            sys.exit(130)
        if code >= 0:
            sys.exit(code)
    from skinvault.cli import main as full  # noqa: PLC0415

    full()
