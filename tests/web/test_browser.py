"""The shopper's web page in a real headless Chromium, against a real API server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.conftest import Served

SONY_REVIEW = (
    '[?] "The noise cancelling is superb on flights." The noise cancelling is superb on flights.'
)


def _search(page: Page, served: Served, query: str) -> None:
    page.goto(served.url + "/")
    page.fill("#q", query)
    page.press("#q", "Enter")


def _tab_to(page: Page, expression: str, wanted: str, limit: int = 40) -> None:
    """Press Tab until ``expression`` (about the focused element) gives ``wanted``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(expression) == wanted:
            return
    raise AssertionError(f"Tab never reached {wanted!r}")


def test_search_with_filters_chips_and_why(page: Page, served: Served) -> None:
    _search(page, served, "noise cancelling headphones under $100")
    results = page.locator("[data-testid=result]")
    expect(results.first).to_have_attribute("data-product-id", "hp-anker")
    # the price limit it understood is a chip, and every result keeps to it
    chip = page.locator("[data-testid=chip]").filter(has_text=re.compile("100"))
    expect(chip).to_have_count(1)
    ids = results.evaluate_all("nodes => nodes.map(n => n.dataset.productId)")
    assert "hp-sony" not in ids  # 348.00: above the limit
    # the "why" of a result: its retrievers and matched terms
    results.first.locator("[data-testid=why-toggle]").click()
    why = results.first.locator("[data-testid=why]")
    expect(why).to_be_visible()
    expect(why).to_contain_text(re.compile("lexical|BM25|keyword", re.IGNORECASE))
    # removing the chip lifts the limit: the Sony comes back
    chip.locator("[data-testid=chip-remove]").click()
    expect(page.locator("[data-testid=result][data-product-id=hp-sony]")).to_have_count(1)
    expect(page.locator("[data-testid=chip]").filter(has_text=re.compile("100"))).to_have_count(0)
    # a filter from the form: at most 100 again, this time as a field
    page.fill("#price-max", "100")
    page.press("#q", "Enter")
    expect(page.locator("[data-testid=result][data-product-id=hp-sony]")).to_have_count(0)
    expect(page.locator("[data-testid=result]").first).to_be_visible()


def test_a_streamed_answer_cites_passages_that_exist_and_highlights_them(
    page: Page, served: Served
) -> None:
    served.llm.replies.append(SONY_REVIEW)
    page.goto(served.url + "/#/product/hp-sony")
    product = page.locator("[data-testid=product]")
    expect(product).to_have_attribute("data-product-id", "hp-sony")
    expect(page.locator("[data-testid=review]")).to_have_count(2)
    expect(page.locator("[data-testid=aspect]").first).to_be_visible()  # what customers say
    page.fill("#ask-input", "How is the noise cancelling?")
    page.press("#ask-input", "Enter")
    answer = page.locator("[data-testid=answer]")
    expect(answer).to_have_attribute("data-state", "done")
    expect(answer).to_contain_text("superb on flights")
    citations = answer.locator("[data-testid=citation]")
    expect(citations.first).to_be_visible()
    for passage in citations.evaluate_all("nodes => nodes.map(n => n.dataset.passageId)"):
        # every citation points at a passage shown on the page
        assert page.locator(f'[data-passage-id="{passage}"]:not(a)').count() == 1, passage
    cited = citations.first.get_attribute("data-passage-id")
    assert cited == "hp-sony#review-1"
    citations.first.click()
    expect(page.locator(f'[data-passage-id="{cited}"]:not(a)')).to_have_class(
        re.compile(r"\bhighlight\b")
    )


def test_an_advice_conversation_follows_up_with_a_comparison(page: Page, served: Served) -> None:
    page.goto(served.url + "/#/advice")
    page.fill("#chat-input", "noise cancelling headphones")
    page.press("#chat-input", "Enter")
    first = page.locator("[data-testid=chat-message][data-role=assistant]").last
    expect(first).to_have_attribute("data-state", "done")
    expect(first.locator("[data-testid=citation]").first).to_have_attribute(
        "href", re.compile(r"#/product/")
    )
    page.fill("#chat-input", "compare the first two")
    page.press("#chat-input", "Enter")
    expect(page.locator("[data-testid=chat-message][data-role=assistant]")).to_have_count(2)
    second = page.locator("[data-testid=chat-message][data-role=assistant]").last
    expect(second).to_have_attribute("data-state", "done")
    table = second.locator("table[data-testid=comparison]")
    expect(table).to_be_visible()
    expect(table).to_contain_text("Brand")


def test_privacy_opt_out_then_erase(page: Page, served: Served) -> None:
    page.goto(served.url + "/#/product/hp-anker")  # a view event for this shopper
    expect(page.locator("[data-testid=product]")).to_be_visible()
    page.goto(served.url + "/#/privacy")
    summary = page.locator("[data-testid=profile-summary]")
    expect(summary).to_be_visible()
    user = page.evaluate("JSON.parse(localStorage.getItem('shopguide.session')).user_id")
    profiles = served.services.personalization
    assert profiles.profiles is not None
    page.locator("#opt-out").check()
    expect(page.locator("[data-testid=privacy-status]")).not_to_be_empty()
    assert profiles.profiles.enabled(user) is False
    page.click("#erase")
    page.click("#erase-confirm")
    expect(page.locator("[data-testid=privacy-status]")).to_contain_text(
        re.compile("erased|deleted", re.IGNORECASE)
    )
    assert profiles.profiles.profile(user) is None


def test_chinese_follows_the_query_and_a_phone_screen_does_not_scroll_sideways(
    page: Page, served: Served
) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    _search(page, served, "降噪耳机")
    expect(page.locator("[data-testid=result]").first).to_have_attribute(
        "data-product-id", "zh-huawei"
    )
    expect(page.locator("html")).to_have_attribute("lang", "zh")
    expect(page.locator("label[for=q]")).to_contain_text(re.compile("[\u4e00-\u9fff]"))
    for route in ("/", "/#/product/hp-sony", "/#/advice", "/#/privacy"):
        page.goto(served.url + route)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (route, width)


def test_every_control_is_labelled_and_a_search_works_from_the_keyboard(
    page: Page, served: Served
) -> None:
    for route in ("/", "/#/product/hp-sony", "/#/advice", "/#/privacy"):
        page.goto(served.url + route)
        page.wait_for_load_state("networkidle")
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, textarea, select, button')]
                .filter(el => el.offsetParent !== null)
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.textContent || '').trim())
                .map(el => el.outerHTML.slice(0, 80))"""
        )
        assert unlabelled == [], (route, unlabelled)
    # keyboard only: from the top of the page, Tab reaches the query box; Enter searches;
    # Tab reaches the first result's link and Enter opens it
    page.goto(served.url + "/")
    page.wait_for_load_state("networkidle")
    _tab_to(page, "document.activeElement.id", "q")
    page.keyboard.type("headphones")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=result]").first).to_be_visible()
    _tab_to(page, "document.activeElement.dataset.testid", "result-link")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=product]")).to_be_visible()
    # the focus is visible: the focused control draws an outline
    page.focus("#ask-input")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
