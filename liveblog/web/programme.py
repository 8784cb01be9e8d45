"""The organisers' programme import page: upload a schedule file (frab/pretalx XML or JSON,
Sessionize's JSON, iCalendar, a spreadsheet's CSV), see what it would create, change, move and
cancel, then import it. The preview writes nothing; the file comes back with the confirmation
(compressed in the page), and is read and checked again before anything is written
(docs/programme.md)."""

from __future__ import annotations

import base64
import binascii
import zlib

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from liveblog.capture.importing import ImportPlan
from liveblog.capture.schedule import MAX_FILE_BYTES, ScheduleError
from liveblog.errors import LiveblogError
from liveblog.web.api import ok, raw_body
from liveblog.web.auth import organiser_or_login, require_organiser, services
from liveblog.web.render import render


def _carry(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode()


def _carried(value: str) -> bytes:
    """The file the preview page carried, decompressed no further than the largest file taken."""
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(value, validate=True), MAX_FILE_BYTES + 1)
    except (binascii.Error, zlib.error, ValueError):
        raise ScheduleError(
            "the file sent back from the preview is damaged: choose the file again", field="file"
        ) from None
    if len(data) > MAX_FILE_BYTES or inflate.unconsumed_tail:
        raise ScheduleError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB", field="file")
    return data


async def import_programme(request: Request) -> Response:
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    svc = services(request)
    event = await svc.programme.event(request.path_params["event_id"])
    plan: ImportPlan | None = None
    error: LiveblogError | None = None
    carried = filename = ""
    if request.method == "POST":
        await require_organiser(request)
        try:
            async with request.form(
                max_part_size=2 * MAX_FILE_BYTES
            ) as form:  # closes the upload's temp file
                upload = form.get("file")
                confirm = form.get("confirm") == "yes"
                if isinstance(upload, UploadFile) and upload.filename:
                    data = await upload.read(MAX_FILE_BYTES + 1)
                    filename = upload.filename[:200]
                elif form.get("schedule"):
                    data = _carried(str(form.get("schedule")))
                    filename = str(form.get("filename", ""))[:200]
                else:
                    raise ScheduleError(
                        "choose a programme file: schedule.xml, schedule.json, Sessionize's JSON, .ics or .csv",
                        field="file",
                    )
            if confirm:
                await svc.imports.apply(event.id, data, filename)
                return RedirectResponse(f"/organise/events/{event.id}", status_code=303)
            plan = await svc.imports.preview(event.id, data, filename)
            carried = _carry(data)
        except LiveblogError as exc:
            error = exc
    return render(
        request,
        "organise/import.html",
        {
            "event": event,
            "plan": plan,
            "error": error,
            "carried": carried,
            "filename": filename,
            "venue_zone": svc.settings.archive.timezone,
        },
        error.status if error else 200,
    )


async def programme_api(request: Request) -> Response:
    """POST /api/v1/events/{id}/programme: the file as the body; ?dry_run=1 for the plan only."""
    await require_organiser(request)
    svc = services(request)
    data = await raw_body(request, MAX_FILE_BYTES)
    event_id = request.path_params["event_id"]
    dry_run = request.query_params.get("dry_run", "") in ("1", "true", "yes")
    if dry_run:
        plan = await svc.imports.preview(event_id, data)
    else:
        plan = await svc.imports.apply(event_id, data)
    return ok({**plan.to_wire(), "dry_run": dry_run})


async def organiser_export(request: Request) -> Response:
    """The session's JSON export, for an organiser about to delete it: noted as taken, so the
    delete that follows is allowed while nothing changes (docs/programme.md)."""
    if (redirect := await organiser_or_login(request)) is not None:
        return redirect
    svc = services(request)
    session = await svc.programme.session(request.path_params["session_id"])
    await svc.programme.mark_exported(session.id)  # first: the export read after holds all until now
    doc = await svc.archive.export(session.event_id, [session.id])
    return JSONResponse(doc, headers={"content-disposition": f'attachment; filename="{session.id}.json"'})


routes = [
    Route("/organise/events/{event_id}/import", import_programme, methods=["GET", "POST"]),
    Route("/organise/sessions/{session_id}/export.json", organiser_export),
    Route("/api/v1/events/{event_id}/programme", programme_api, methods=["POST"]),
]
