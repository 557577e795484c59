"""The kinds of background job and the service each one calls.

    thumbnail        {"photo_id"}  the photo's thumbnail (enqueued by every upload); pixels
                                   that do not decode end it at once as ``failed`` and
                                   list a failed derivative, which the preview shows
    display_version  {"photo_id"}  the browser copy of a HEIC/TIFF upload, made ahead of
                                   the first view (services/versions.ensure_version);
                                   ``failed`` when the pixels do not decode
    measure          {"photo_id"}  the depigmented-share measurement of a photo of a body
                                   site, enqueued by its upload (portal, API, FHIR) or by
                                   moving it to a site (services/tracking.measure_photo)
    remeasure        {"photo_id"}  measure anew a photo whose latest measurement an older
                                   method version made (same region and parts left out)
    remeasure_stale  {}            queue ``remeasure`` for every such photo (daily,
                                   periodic: a new version reaches every chart)
    jobs_purge       {}            forget finished jobs (done, failed) after a week (daily,
                                   periodic; a failed thumbnail stays in derivative_failures)
    dicom_send       {"photo_id", "actor_id", "destination", "purpose"}
                                   a send to a PACS that failed in its request, tried
                                   again (services/dicom_send.retry_send; decided again)

Every handler is idempotent: run twice, it leaves what one run leaves.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from skinvault.db.models import Job
from skinvault.services import jobs, thumbnails
from skinvault.services.photo_store import MEASURE_JOB
from skinvault.services.tracking import REMEASURE_JOB

DISPLAY_VERSION = "display_version"
MEASURE = MEASURE_JOB
JOBS_PURGE = "jobs_purge"
REMEASURE = REMEASURE_JOB
REMEASURE_STALE = "remeasure_stale"
KEEP_FINISHED = timedelta(days=7)
#: A failed job waits longer for an operator's "Try again" (after a decoder upgrade, say).
KEEP_FAILED = timedelta(days=90)
#: Scheduled kinds, enqueued once per period by the first worker thread of any process.
PERIODIC = (jobs.Periodic(JOBS_PURGE, 86400), jobs.Periodic(REMEASURE_STALE, 86400))


@jobs.handler(thumbnails.KIND)
def _thumbnail(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    thumbnails.make_thumbnail(ctx.vault, str(payload["photo_id"]), transaction=ctx.transaction)


@jobs.handler(DISPLAY_VERSION)
def _display_version(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    from skinvault.errors import PhotoError  # noqa: PLC0415
    from skinvault.services import versions  # noqa: PLC0415 (Pillow, OpenCV: on use)

    try:
        versions.ensure_version(ctx.vault, photo_id=str(payload["photo_id"]),
                                kind=versions.DISPLAY)  # fmt: skip
    except versions.VersionUnavailable as exc:  # the next read says why; no retry helps
        if isinstance(exc.__cause__, PhotoError):  # pixels that do not decode: not "done"
            raise jobs.Unworkable(str(exc)) from exc
        raise jobs.Permanent(str(exc)) from exc


@jobs.handler(MEASURE)
def _measure(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    from skinvault.errors import NotFound, PhotoError  # noqa: PLC0415
    from skinvault.services import tracking  # noqa: PLC0415 (OpenCV: on use)

    try:
        tracking.measure_photo(ctx.vault, str(payload["photo_id"]))
    except NotFound as exc:  # the photo is gone: nothing to do
        raise jobs.Permanent(str(exc)) from exc
    except PhotoError as exc:  # pixels it cannot read (audited): failed, not done
        raise jobs.Unworkable(str(exc)) from exc


@jobs.handler(REMEASURE)
def _remeasure(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    from skinvault.errors import NotFound, PhotoError  # noqa: PLC0415
    from skinvault.services import tracking  # noqa: PLC0415 (OpenCV: on use)

    try:
        tracking.measure_photo(ctx.vault, str(payload["photo_id"]), again=True)
    except NotFound as exc:  # the photo is gone: nothing to do
        raise jobs.Permanent(str(exc)) from exc
    except PhotoError as exc:  # pixels it cannot read (audited): failed, not done
        raise jobs.Unworkable(str(exc)) from exc


@jobs.handler(REMEASURE_STALE)
def _remeasure_stale(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    from skinvault.services import tracking  # noqa: PLC0415 (OpenCV: on use)

    tracking.remeasure_stale(ctx.vault)


@jobs.handler("dicom_send")
def _dicom_send(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    from skinvault.errors import AccessDenied  # noqa: PLC0415
    from skinvault.services import dicom_send  # noqa: PLC0415 (pydicom, pynetdicom: on use)

    with ctx.vault.reading() as session:
        job = session.get(Job, ctx.job_id)
        last = job is None or ctx.attempt >= job.max_attempts
    try:
        dicom_send.retry_send(ctx.vault, payload, attempt=ctx.attempt, last=last)
    except (AccessDenied, PermissionError) as exc:  # refused now (audited): no retry helps
        raise jobs.Permanent(str(exc)) from exc


@jobs.handler(JOBS_PURGE)
def _purge(ctx: jobs.JobContext, payload: dict[str, Any]) -> None:
    now = ctx.vault.clock.now()
    with ctx.transaction() as session:
        for state, kept in (
            (jobs.JobState.DONE, KEEP_FINISHED),
            (jobs.JobState.FAILED, KEEP_FAILED),
        ):
            session.execute(
                delete(Job).where(
                    Job.state == state.value, Job.finished_at < now - kept, Job.id != ctx.job_id
                )
            )
