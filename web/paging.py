"""Paging for every list that grows: one page of rows, the total, and links to the pages around it.

A list's query must have a stable order (a unique column last, usually the id), so a row never shows
on two pages nor falls between them. ``paginate`` runs the count and the page; the call log, which
pages by key (``before=<id>``), uses ``count`` alone for its total. Templates render ``_pager.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import request, url_for
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from web.limits import parse_id

T = TypeVar("T")
PAGE_ARG = "page"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int  # 1-based
    size: int
    total: int
    endpoint: str
    args: dict[str, Any]  # what the links keep: the view's arguments and the query but the page
    arg: str = PAGE_ARG  # the query argument holding this list's page (two lists on one page)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_index(self) -> int:
        """The 1-based position of the page's first row (0 on an empty list)."""
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.items)

    def url(self, number: int) -> str:
        args = {**self.args, self.arg: number} if number > 1 else self.args
        return url_for(self.endpoint, **args)

    @property
    def previous_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.pages else None


def page_number(arg: str = PAGE_ARG) -> int:
    """The page asked for by ``?page=`` (1 when absent, not a number, or out of range)."""
    number = parse_id(request.args.get(arg))
    return number if number is not None and number >= 1 else 1


def link_args(arg: str = PAGE_ARG) -> dict[str, Any]:
    """The current view's arguments and non-empty query arguments, without ``arg`` (the page)."""
    args: dict[str, Any] = dict(request.view_args or {})
    for key in request.args:
        if key == arg:
            continue
        values = [value for value in request.args.getlist(key) if value]
        if values:
            args[key] = values if len(values) > 1 else values[0]
    return args


def count(session: Session, query: Select[Any]) -> int:
    """How many rows ``query`` finds (its order and limit are ignored)."""
    inner = query.order_by(None).limit(None).offset(None).subquery()
    return int(session.execute(select(func.count()).select_from(inner)).scalar_one())


def paginate(session: Session, query: Select[tuple[T]], *, size: int, arg: str = PAGE_ARG) -> Page[T]:
    """The page of ``query`` asked for by ``?<arg>=`` and the total; the query is ordered by the caller,
    with a unique column last.

    A page past the end shows the last page, so a link kept after rows were removed still lands."""
    total = count(session, query)
    pages = max(1, -(-total // size))
    wanted = min(page_number(arg), pages)
    items = list(session.execute(query.limit(size).offset((wanted - 1) * size)).scalars())
    return Page(items, wanted, size, total, request.endpoint or "", link_args(arg), arg)


def mapped(page: Page[Any], items: Sequence[T]) -> Page[T]:
    """The same page with its rows turned into view rows."""
    return Page(items, page.number, page.size, page.total, page.endpoint, page.args, page.arg)
