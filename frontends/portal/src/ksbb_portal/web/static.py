"""The style sheet (in the package) and htmx (vendored from npm at install time, never from a CDN)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from ksbb_portal.web.context import STATIC, Parts

router = APIRouter(include_in_schema=False)
#: name -> where the file lives ("package": this package's static folder; "vendor": the npm folder).
FILES = {"portal.css": ("package", "text/css"), "htmx.min.js": ("vendor", "application/javascript")}


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> FileResponse:
    """One static file, cacheable for a day (addresses carry a version)."""
    if name not in FILES:
        raise HTTPException(404)
    parts: Parts = request.app.state.parts
    where, media_type = FILES[name]
    path = (STATIC if where == "package" else parts.vendor_dir) / name
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
