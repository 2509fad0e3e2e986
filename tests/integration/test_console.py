"""The analysts' console in a real browser: headless Chromium against a live worker and
broker. Sign in (a wrong token is refused on the page), filter the queue, open a
rollover-loan case and see its movement graph drawn, all from the keyboard."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from tests.integration.browser import chromium
from tests.integration.harness import Worker, make_config, sample_alerts
from tests.integration.peers import http_json

pytestmark = pytest.mark.integration

TOKEN = "console-token-0123456789"
SHOTS = os.environ.get("FRAUDMON_CONSOLE_SCREENSHOTS")
"""A folder to save the queue and case screenshots in (docs/ for the README)."""


async def press(page: Page, selector: str, key: str = "Enter") -> None:
    await page.focus(selector)
    await page.keyboard.press(key)


async def test_sign_in_filter_the_queue_and_open_a_rollover_case(tmp_path: Path,
                                                                 bootstrap: str) -> None:
    config, settings = make_config(tmp_path, bootstrap)
    base = f"http://127.0.0.1:{settings.web.port}"
    worker = Worker(config, settings, tmp_path / "worker.log",
                    env={"FRAUDMON_API_TOKEN": TOKEN}).start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        emitted = await sample_alerts(settings, tmp_path / "events.jsonl")
        rollovers = {a["alert_id"]: a for a in emitted.values()
                     if a["pattern"] == "rollover_loan"}
        assert rollovers and len(rollovers) < len(emitted)

        async with chromium(tmp_path / "profile") as browser:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            answer = await page.goto(f"{base}/ui")
            assert answer is not None and answer.status == 200
            assert "script-src 'self'" in answer.headers["content-security-policy"]

            # A wrong token: the sign-in error, and no way past it.
            await expect(page.locator("#token")).to_be_focused()
            await page.keyboard.type("not-the-token-at-all")
            await page.keyboard.press("Enter")
            await expect(page.locator("#signin-error")).to_be_visible()
            await expect(page.locator("#signin-error")).to_contain_text("does not accept")
            await expect(page.locator("#queue-view")).to_be_hidden()

            await page.fill("#token", TOKEN)
            await page.keyboard.press("Enter")
            await expect(page.locator("#queue-view")).to_be_visible()
            await expect(page.locator("#signin-error")).to_be_hidden()
            await expect(page.locator("#queue-rows tr")).to_have_count(len(emitted))

            # Filter by pattern, from the keyboard.
            await page.focus("#f-pattern")
            await page.keyboard.press("Home")
            await page.select_option("#f-pattern", "rollover_loan")
            await press(page, "#apply-filters")
            rows = page.locator("#queue-rows tr")
            await expect(rows).to_have_count(len(rollovers))
            patterns = await page.locator("#queue-rows tr td:nth-child(3)").all_inner_texts()
            assert set(patterns) == {"rollover_loan"}
            if SHOTS:
                await page.screenshot(path=str(Path(SHOTS) / "console-queue.png"))

            # Open the newest rollover case with Enter on its link.
            first = await rows.first.get_attribute("data-alert-id")
            assert first in rollovers
            await press(page, "#queue-rows tr:first-child a.case-link")
            await expect(page.locator("#case-view")).to_be_visible()
            alert = rollovers[first]
            await expect(page.locator("#case-title")).to_have_text(
                f"rollover_loan: borrower {alert['entity']}")
            await expect(page.locator("#reasons tbody tr")).to_have_count(len(alert["reasons"]))
            signals = await page.locator("#reasons tbody tr td:first-child").all_inner_texts()
            assert signals == [r["signal"] for r in alert["reasons"]]
            await expect(page.locator("#evidence li")).to_have_count(len(alert["evidence"]))

            # The graph: one drawn node per party the API names, the lenders among them.
            status, graph = http_json(
                f"{base}/entities/{quote(alert['entity'])}/movements?entity_type=borrower",
                headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 200 and len(graph["nodes"]) >= 3
            nodes = page.locator("svg.graph g.node")
            await expect(nodes).to_have_count(len(graph["nodes"]))
            drawn = set(await nodes.evaluate_all("(gs) => gs.map((g) => g.dataset.id)"))
            assert drawn == {n["id"] for n in graph["nodes"]}
            assert any(i.startswith("lender:") for i in drawn)
            await expect(page.locator("svg.graph path.edge.kind-rollover")).not_to_have_count(0)
            await expect(page.locator("#scores tbody tr").first).to_be_visible()

            # Keyboard through the graph: the party in focus is described in words.
            await press(page, "svg.graph", "ArrowRight")
            await expect(page.locator("#graph-focus")).to_contain_text("lender ")
            if SHOTS:
                await page.screenshot(path=str(Path(SHOTS) / "console-case.png"))
            assert problems == []
        assert worker.stop() == 0
    finally:
        worker.stop()
