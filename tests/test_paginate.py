"""connector.api.paginate.walk over a fake listing: the loop guard, the page cap, the next-token rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from connector.api.paginate import Page, WindowPage, next_token, walk
from connector.errors import ApiError, PaginationError


@dataclass(frozen=True)
class Fake:
    """A listing whose pages are given by token; ``None`` is the first page."""

    name: str
    pages: dict[str | None, Page]


def fetch(listing: Fake, token: str | None) -> Page:
    return listing.pages[token]


def test_listings_are_walked_in_turn_each_ending_with_a_last_page() -> None:
    first = Fake("/a", {None: Page([1, 2], "t2"), "t2": Page([3], None)})
    empty = Fake("/b", {None: Page([], "ignored")})  # an empty page ends a listing, even with a token
    pages = list(walk([first, empty], fetch, page_size=2, max_pages=10))
    assert pages == [WindowPage(0, [1, 2], False), WindowPage(0, [3], True), WindowPage(1, [], True)]


def test_a_token_cycle_stops_at_its_first_repeat_after_handing_out_the_page() -> None:
    cycle = Fake("/c", {None: Page([1], "A"), "A": Page([2], "B"), "B": Page([3], "A")})
    got: list[WindowPage] = []
    with pytest.raises(PaginationError, match="already given") as caught:
        got.extend(walk([cycle], fetch, page_size=5, max_pages=100))
    assert [p.records for p in got] == [[1], [2], [3]]
    assert caught.value.endpoint == "/c"


def test_the_page_cap_ends_a_listing() -> None:
    endless = Fake("/d", {None: Page([0], "p1"), **{f"p{n}": Page([n], f"p{n + 1}") for n in range(1, 5)}})
    with pytest.raises(PaginationError, match="cap of 3 pages"):
        list(walk([endless], fetch, page_size=5, max_pages=3))


def test_a_page_far_larger_than_asked_is_refused_before_it_is_handed_out() -> None:
    huge = Fake("/e", {None: Page(list(range(105)), None)})
    with pytest.raises(ApiError, match="105 records to a request for 2"):
        next(walk([huge], fetch, page_size=2, max_pages=10))
    assert next(walk([Fake("/f", {None: Page(list(range(104)), None)})], fetch, page_size=2, max_pages=10)).last


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("  ", None), ("x", "x"), (7, "7")])
def test_next_token_accepts_text_and_integers(value: object, expected: str | None) -> None:
    assert next_token("/g", value) == expected


@pytest.mark.parametrize("value", [False, 0.5, {"t": 1}, ["A"]])
def test_next_token_refuses_anything_else(value: object) -> None:
    with pytest.raises(ApiError, match="neither text nor a number"):
        next_token("/g", value)
