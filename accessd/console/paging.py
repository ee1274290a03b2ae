"""One page of a longer list, for server-side paging in the admin UI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

PER_PAGE = 50


@dataclass(frozen=True)
class Page:
    items: list = field(default_factory=list)
    total: int = 0
    page: int = 1  # 1-based
    per_page: int = PER_PAGE
    # True when ``total`` is a lower bound: counting stopped there (see decision log pages)
    more: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def offset(self) -> int:
        return offset_of(self.page, self.per_page)


def offset_of(page: int, per_page: int = PER_PAGE) -> int:
    return (page - 1) * per_page


def newest_first(session: Session, model, where: Sequence, page: int, per_page: int, row: Callable) -> Page:
    """One page of ``model`` rows matching ``where``, highest id first, each made into ``row(r)``."""
    total = session.scalar(select(func.count(model.id)).where(*where))
    stmt = select(model).where(*where).order_by(model.id.desc())
    rows = session.scalars(stmt.limit(per_page).offset(offset_of(page, per_page)))
    return Page(items=[row(r) for r in rows], total=total, page=page, per_page=per_page)
