"""``skinvault export …``: a photo as DICOM, a patient's record as FHIR, for operators.

    $ skinvault export dicom PHOTO_ID --as lee@clinic.example --out photo.dcm
    $ skinvault export fhir PATIENT_ID --as lee@clinic.example --out record.json

The export is made on behalf of a named user account (``--as``): the same
policy decision as in the portal or the API decides it, and the audit log
records it as that person's export (``photo:export-dicom``,
``record:export-fhir``). Exit codes as for ``admin``.
"""

# As for cli.py and admin_cli.py: Typer commands take one parameter per option, and services
# are imported inside commands to keep start-up fast.

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from skinvault.admin_cli import BlobStoreUrl, ConfigFile, DatabaseUrl, DataDir, _vault, out
from skinvault.errors import NotFound

if TYPE_CHECKING:
    from skinvault.actors import Actor
    from skinvault.bootstrap import Vault

export_app = typer.Typer(
    help="Export a photo as DICOM or a patient's record as FHIR R4 (decided and audited).",
    no_args_is_help=True,
)

AsUser = Annotated[
    str,
    typer.Option("--as", help="E-mail of the account the export is made for (it is audited)."),
]
PurposeOption = Annotated[
    str, typer.Option("--purpose", help="Why: care, teaching, research, publication, …")
]
Out = Annotated[Path, typer.Option("--out", help="File to write (it is replaced).")]


def _actor(vault: Vault, email: str) -> Actor:
    from skinvault.actors import Actor, Role
    from skinvault.services.records import user_by_email

    user = user_by_email(vault, email)
    if user is None or user.disabled:
        raise NotFound(f"there is no active account {email}")
    return Actor(user.id, Role(user.role), user.display_name or user.email)


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(path)


@export_app.command("dicom")
def export_dicom_command(
    photo_id: Annotated[str, typer.Argument(help="The photo's id.")],
    as_user: AsUser,
    out_file: Out,
    purpose: PurposeOption = "care",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Write a photo as a DICOM Part 10 file (VL Photographic Image, the JPEG unchanged)."""
    from skinvault.services.photo_export import export_dicom

    with _vault(config, data_dir, database_url, blob_store) as vault:
        got = export_dicom(vault, photo_id=photo_id, actor=_actor(vault, as_user), purpose=purpose)
    _write(out_file, got.part10.data)
    out.print(f"Wrote {out_file} ({len(got.part10.data):,} bytes)")
    out.print(f"SOP Instance UID {got.part10.sop_instance_uid}")
    out.print(f"Transfer syntax {got.part10.transfer_syntax}, {got.part10.photometric}")
    if got.part10.conversion:
        out.print(f"Converted: {got.part10.conversion}")


@export_app.command("fhir")
def export_fhir_command(
    patient_id: Annotated[str, typer.Argument(help="The patient's id.")],
    as_user: AsUser,
    out_file: Out,
    purpose: PurposeOption = "care",
    base_url: Annotated[
        str, typer.Option("--base-url", help="The FHIR base the fullUrls name.")
    ] = "urn:skinvault/fhir/R4",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    blob_store: BlobStoreUrl = None,
    config: ConfigFile = None,
) -> None:
    """Write Patient/$everything as a FHIR R4 Bundle (JSON): what that user may see."""
    from skinvault.services.fhir_resources import fhir_everything
    from skinvault.services.record_export import export_record

    with _vault(config, data_dir, database_url, blob_store) as vault:
        got = export_record(
            vault, actor=_actor(vault, as_user), patient_id=patient_id, purpose=purpose
        )
        bundle = fhir_everything(got, base=base_url.rstrip("/"))
    _write(out_file, json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8"))
    out.print(f"Wrote {out_file}: {len(bundle.get('entry', []))} resources")
