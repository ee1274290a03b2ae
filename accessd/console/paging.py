"""One page of a longer list, for server-side paging in the admin UI."""

from __future__ import annotations

from dataclasses import dataclass, field

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
