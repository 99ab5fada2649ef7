"""Routes of the public reference data: DKI Jakarta's areas and the aid item catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from ksbb_contracts.areas import AreaLevel, areas

from ksbb_registry.api import schemas
from ksbb_registry.domain import areas as places
from ksbb_registry.domain.catalogue import CATALOGUE

router = APIRouter()


@router.get(
    "/areas",
    tags=["areas"],
    response_model=list[schemas.AreaOut],
    summary="Areas of DKI Jakarta, optionally the children of one area (public)",
)
async def list_areas(
    parent: Annotated[str | None, Query(description="e.g. 31.71")] = None,
    level: AreaLevel | None = None,
) -> list[schemas.AreaOut]:
    return [
        schemas.AreaOut(code=a.code, name=a.name, level=a.level, parent=a.parent)
        for a in places.list_areas(parent, level)
    ]


@router.get("/areas/tree", tags=["areas"], summary="The whole area hierarchy as a tree (public)")
async def area_tree() -> dict[str, Any]:
    directory = areas()
    return {"version": directory.version, "source": directory.source, "tree": directory.tree().model_dump()}


@router.get("/areas/{code}", tags=["areas"], response_model=schemas.AreaOut, summary="One area (public)")
async def get_area(code: str) -> schemas.AreaOut:
    area = places.find_area(code)
    return schemas.AreaOut(code=area.code, name=area.name, level=area.level, parent=area.parent)


@router.get(
    "/catalogue",
    tags=["needs"],
    response_model=list[schemas.CatalogueItemOut],
    summary="Aid item catalogue with KSBB reference packages (public)",
)
async def catalogue() -> list[schemas.CatalogueItemOut]:
    return [schemas.CatalogueItemOut(**entry.__dict__) for entry in CATALOGUE]
