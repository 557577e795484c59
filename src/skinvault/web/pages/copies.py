"""The patient's own copies: upload receipts, "check a copy", the personal archive, the public copy.

Each page calls one service (:mod:`skinvault.services.receipts`, ``archive``,
``public_copy``); the decisions and the audit are there. The check-a-copy page
hashes the chosen file in the browser (``static/copies.js``) and sends only the
SHA-256; without the script the file is sent, hashed and dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from skinvault.errors import (
    AccessDenied,
    AuthenticationFailed,
    NotFound,
    PhotoError,
    RequestInvalid,
    SkinvaultError,
)
from skinvault.policy.decide import PatientAction
from skinvault.services import archive, public_copy, receipts, records
from skinvault.web.pages.common import (
    check_csrf,
    error_page,
    form_fields,
    own_record,
    render,
    signed_in,
    vault,
)
from skinvault.web.uploads import read_form

router = APIRouter(include_in_schema=False)
CHUNK = 64 * 1024


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


def _status(exc: SkinvaultError) -> int:
    if isinstance(exc, AccessDenied | AuthenticationFailed):
        return 403
    if isinstance(exc, NotFound):
        return 404
    return 400


@router.get("/portal/copies", response_class=HTMLResponse)
def copies_page(request: Request) -> Response:
    """The patient's copies in one place: receipts, check a copy, archive, public copy."""
    info = signed_in(request)
    try:
        patient_id = own_record(request, info, PatientAction.LIST_PHOTOS)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    mine = records.list_photos(vault(request), actor=info.actor, patient_id=patient_id)
    return render(request, "copies.html", info=info, photos=mine)


# -- upload receipts ------------------------------------------------------------------------


@router.get("/portal/photos/{photo_id}/receipt", response_class=HTMLResponse)
def receipt_page(photo_id: str, request: Request) -> Response:
    info = signed_in(request)
    v = vault(request)
    try:
        got = receipts.receipt_for(v, photo_id=photo_id, actor=info.actor)
    except SkinvaultError as exc:
        return error_page(request, exc, _status(exc))
    return render(
        request,
        "receipt.html",
        info=info,
        receipt=got,
        lines=receipts.receipt_lines(got),
        who=receipts.who_could_see(got),
    )


@router.get("/portal/photos/{photo_id}/receipt.txt")
def receipt_download(photo_id: str, request: Request) -> Response:
    """The signed receipt as plain UTF-8 text (keep it; a clinic can check the signature)."""
    info = signed_in(request)
    v = vault(request)
    try:
        got = receipts.receipt_for(v, photo_id=photo_id, actor=info.actor)
    except SkinvaultError as exc:
        return error_page(request, exc, _status(exc))
    return Response(
        receipts.signed_text(v, got),
        media_type="text/plain; charset=utf-8",
        headers=_download(got.file_name),
    )


# -- check a copy ---------------------------------------------------------------------------


@router.get("/portal/check-copy", response_class=HTMLResponse)
def check_copy_page(request: Request) -> Response:
    info = signed_in(request)
    try:
        own_record(request, info, PatientAction.LIST_PHOTOS)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    return render(request, "check_copy.html", info=info, checked=None)


@router.post("/portal/check-copy", response_class=HTMLResponse)
async def check_copy(request: Request) -> Response:
    """Whether a file is a photo of the record: by the SHA-256 the browser computed, or
    (without the script) by hashing the sent file here and dropping it at once."""
    info = signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
        check_csrf(info, fields)
        patient_id = own_record(request, info, PatientAction.LIST_PHOTOS)
    except SkinvaultError as exc:
        return error_page(request, exc, _status(exc))
    try:
        if fields.get("sha256"):
            digest = receipts.normalise_sha256(fields["sha256"])
            how = "browser"
        elif "file" in files and files["file"].data:
            digest = hashlib.sha256(files["file"].data).hexdigest()
            how = "server"
            del files  # the file is not kept, not even for the rest of this request
        else:
            raise RequestInvalid("Choose the file you want to check.")
        if digest is None:
            raise RequestInvalid("That is not a SHA-256 (64 hexadecimal characters).")
        found = await run_in_threadpool(
            lambda: receipts.find_copy(v, actor=info.actor, patient_id=patient_id, sha256=digest)
        )
    except (PhotoError, RequestInvalid) as exc:
        return render(
            request, "check_copy.html", status_code=400, info=info, checked=None, error=str(exc)
        )
    return render(
        request,
        "check_copy.html",
        info=info,
        checked={"sha256": digest, "found": found, "how": how},
    )


# -- the personal archive -------------------------------------------------------------------


@router.get("/portal/archive", response_class=HTMLResponse)
def archive_page(request: Request) -> Response:
    info = signed_in(request)
    try:
        patient_id = own_record(request, info, PatientAction.READ_HISTORY)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    count = len(records.list_photos(vault(request), actor=info.actor, patient_id=patient_id))
    return render(request, "archive.html", info=info, count=count, minimum=archive.MIN_PASSPHRASE)


def _stream(out: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := out.read(CHUNK):
            yield chunk
    finally:
        out.close()  # the anonymous file is gone with its descriptor


@router.post("/portal/archive")
async def archive_download(request: Request) -> Response:
    """Build the encrypted archive (ciphertext only in an unnamed temporary file), stream it."""
    info = signed_in(request)
    fields = await form_fields(request)
    check_csrf(info, fields)
    v = vault(request)
    passphrase, again = fields.get("passphrase", ""), fields.get("passphrase_again", "")
    try:
        patient_id = own_record(request, info, PatientAction.READ_HISTORY)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    try:
        problem = archive.passphrase_problem(passphrase, again=again)
        if problem:
            raise RequestInvalid(problem)
        out = archive.archive_file(v)
        try:
            made = await run_in_threadpool(
                lambda: archive.build_archive(
                    v, actor=info.actor, patient_id=patient_id, passphrase=passphrase, out=out
                )
            )
        except BaseException:
            out.close()
            raise
    except SkinvaultError as exc:
        if isinstance(exc, RequestInvalid):
            count = len(records.list_photos(v, actor=info.actor, patient_id=patient_id))
            return render(
                request, "archive.html", status_code=400, info=info, count=count,
                minimum=archive.MIN_PASSPHRASE, error=str(exc),
            )  # fmt: skip
        return error_page(request, exc, _status(exc))
    return StreamingResponse(
        _stream(out),
        media_type="application/x-7z-compressed",
        headers={**_download(made.file_name), "Content-Length": str(made.size)},
    )


# -- the public copy ------------------------------------------------------------------------


@router.get("/portal/public-copy", response_class=HTMLResponse)
def public_copy_page(request: Request, photo: str = "") -> Response:
    info = signed_in(request)
    try:
        patient_id = own_record(request, info, PatientAction.LIST_PHOTOS)
    except AccessDenied as exc:
        return error_page(request, exc, 403)
    mine = records.list_photos(vault(request), actor=info.actor, patient_id=patient_id)
    return render(
        request,
        "public_copy.html",
        info=info,
        photos=mine,
        chosen=photo,
        reminders=public_copy.REMINDERS,
    )


@router.post("/portal/public-copy")
async def public_copy_download(request: Request) -> Response:
    """The public copy as a download; nothing of it is kept (one audit line, no link)."""
    info = signed_in(request)
    v = vault(request)
    try:
        fields, files = await read_form(request, v.settings.max_upload_bytes)
        check_csrf(info, fields)
        patient_id = own_record(request, info, PatientAction.LIST_PHOTOS)
    except SkinvaultError as exc:
        return error_page(request, exc, _status(exc))
    try:
        cover_faces = fields.get("faces", "cover") != "keep"
        cover_text = fields.get("text", "cover") != "keep"
        if "file" in files and files["file"].data:
            data = files["file"].data
            made = await run_in_threadpool(
                lambda: public_copy.public_copy_of_file(
                    v,
                    data=data,
                    actor=info.actor,
                    patient_id=patient_id,
                    cover_faces=cover_faces,
                    cover_text=cover_text,
                )
            )
        elif fields.get("photo_id"):
            made = await run_in_threadpool(
                lambda: public_copy.public_copy_of_photo(
                    v,
                    photo_id=fields["photo_id"],
                    actor=info.actor,
                    cover_faces=cover_faces,
                    cover_text=cover_text,
                )
            )
        else:
            raise RequestInvalid("Choose a photo of your record or a file from this device.")
    except (PhotoError, RequestInvalid) as exc:
        mine = await run_in_threadpool(
            lambda: records.list_photos(v, actor=info.actor, patient_id=patient_id)
        )
        return render(
            request, "public_copy.html", status_code=400, info=info, photos=mine,
            chosen=fields.get("photo_id", ""), reminders=public_copy.REMINDERS, error=str(exc),
        )  # fmt: skip
    except SkinvaultError as exc:
        return error_page(request, exc, _status(exc))
    headers = _download(made.file_name)
    # What the copy still shows travels with it, for the page's script to show (plain words).
    headers["X-Public-Copy-Covered"] = str(made.covered)
    return Response(made.data, media_type=made.media_type, headers=headers)
