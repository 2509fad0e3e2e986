"""The analysts' console in a real browser: headless Chromium against ``fraudmon demo``
(its worker, on the suite's broker), as a person would use it. The demo prints the
console's address and token; sign in (a wrong token is refused on the page), filter the
queue, open the debt spiral's rollover-loan case and see its movement graph drawn, all
from the keyboard."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import orjson
import pytest
from playwright.async_api import Page, expect

from monitor.config import Settings, load_settings
from tests.integration.browser import chromium
from tests.integration.harness import TopicReader, until
from tests.integration.peers import http_json

pytestmark = pytest.mark.integration

SHOTS = os.environ.get("FRAUDMON_CONSOLE_SCREENSHOTS")
"""A folder to save the queue and case screenshots in (docs/ for the README)."""


CONSOLE = re.compile(r"console:\s+(http://127\.0\.0\.1:\d+)/ui\s+\(sign in with the token "
                     r"(\S+)\)")
DONE = re.compile(r"^(\d+) decisions, (\d+) alerts")


class Demo:
    """``fraudmon demo`` on the suite's broker; its output read line by line."""

    def __init__(self, workdir: Path, bootstrap: str) -> None:
        port = bootstrap.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDMON_")}
        self.workdir = workdir
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--dir", str(workdir),
             "--port", port], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"}, text=True)
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """The first line from now on that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                if left <= 0:
                    raise AssertionError(f"the demo never printed {pattern.pattern!r}; it "
                                         "printed:\n" + "\n".join(self.seen[-40:])) from None
                continue
            self.seen.append(line)
            found = pattern.search(line)
            if found:
                return found

    def settings(self) -> Settings:
        return load_settings(self.workdir / "config.yaml")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the demo stops its worker and receiver
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


MANY = """async () => {
  const { drawGraph } = await import("/ui/graph.js");
  const hour = (h) => new Date(Date.UTC(2026, 0, 5, h % 24, h)).toISOString();
  const nodes = [{ id: "account:mule-1", entity: "mule-1", entity_type: "account" }];
  const edges = [];
  for (let i = 0; i < 199; i += 1) {
    nodes.push({ id: `account:payer-${i}`, entity: `payer-${i}`, entity_type: "account" });
    edges.push({ kind: "payment", source: `account:payer-${i}`, target: "account:mule-1",
                 amount: 100 + i, ts: hour(i), channel: "transfer" });
  }
  nodes.push({ id: "account:cash", entity: "cash", entity_type: "account" });
  edges.push({ kind: "payment", source: "account:mule-1", target: "account:cash",
               amount: 30000, ts: hour(200), channel: "cash_out" });
  const wrap = document.getElementById("graph-wrap");
  while (wrap.firstChild) wrap.removeChild(wrap.firstChild);
  drawGraph(wrap, { entity: "mule-1", entity_type: "account", nodes, edges });
  const circles = [...wrap.querySelectorAll("g.node circle")].map((c) => {
    const box = c.getBoundingClientRect();
    return { x: box.x + box.width / 2, y: box.y + box.height / 2, r: box.width / 2 };
  });
  let closest = Infinity;
  for (let i = 0; i < circles.length; i += 1) {
    for (let j = i + 1; j < circles.length; j += 1) {
      const a = circles[i], b = circles[j];
      closest = Math.min(closest, Math.hypot(a.x - b.x, a.y - b.y) - a.r - b.r);
    }
  }
  return { nodes: circles.length, edges: wrap.querySelectorAll("path.edge").length, closest };
}"""


async def press(page: Page, selector: str, key: str = "Enter") -> None:
    await page.focus(selector)
    await page.keyboard.press(key)


OUTCOMES = ("true_positive", "false_negative", "false_positive", "true_negative")


def metrics_of(base: str) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {name: float(value) for name, _, value in
            (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")}


def alerts_of(base: str, token: str) -> dict[str, dict[str, Any]]:
    status, page = http_json(f"{base}/alerts?limit=500",
                             headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and page["next_cursor"] is None
    return {alert["alert_id"]: alert for alert in page["alerts"]}


async def test_the_demo_console_sign_in_queue_and_a_rollover_case(tmp_path: Path,
                                                                  bootstrap: str) -> None:
    demo = Demo(tmp_path / "demo", bootstrap)
    try:
        found = await asyncio.to_thread(demo.expect, CONSOLE, 120)
        base, token = found.group(1), found.group(2)
        auth = {"Authorization": f"Bearer {token}"}
        done = await asyncio.to_thread(demo.expect, DONE, 120)
        # The alert store reads the alerts topic on its own: wait until it has them all.
        await until(lambda: len(alerts_of(base, token)) >= int(done.group(2)), 30,
                    "the demo's alerts in the alert store")
        emitted = alerts_of(base, token)
        rollovers = {a["alert_id"]: a for a in emitted.values()
                     if a["pattern"] == "rollover_loan"}
        assert rollovers and len(rollovers) < len(emitted)

        async with chromium(tmp_path / "profile") as browser:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda message: problems.append(message.text)
                    if message.type in ("error", "warning") else None)
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
            # The browser logs the refused request, and nothing else went wrong.
            assert len(problems) == 1 and "401 (Unauthorized)" in problems[0], problems
            problems.clear()

            await page.fill("#token", token)
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
                headers={"Authorization": f"Bearer {token}"})
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

            # Decide it: take it, confirm it, with a note; the history names the token.
            before = metrics_of(base)
            await press(page, "#to-investigating")
            await expect(page.locator("#case-state")).to_have_text("investigating")
            # The keyboard keeps its place on the decision; Tab alone from there on.
            await expect(page.locator("#case-status")).to_be_focused()
            for _ in range(4):  # confirm, dismiss, reopen, then the note box
                await page.keyboard.press("Tab")
            await expect(page.locator("#note")).to_be_focused()
            await page.keyboard.type("five lenders in five weeks, each loan repaying the last")
            for _ in range(3):
                await page.keyboard.press("Shift+Tab")
            await expect(page.locator("#to-confirmed")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page.locator("#case-state")).to_have_text("confirmed")
            await expect(page.locator("#case-status")).to_be_focused()
            await expect(page.locator("#history li")).to_have_count(2)
            await expect(page.locator("#history")).to_contain_text("demo-analyst")
            await expect(page.locator("#history")).to_contain_text("five lenders")
            status, case = http_json(f"{base}/cases/{first}", headers=auth)
            assert status == 200 and case["status"] == "confirmed" and case["decisions"] == 1
            label_id = case["history"][-1]["label_event_id"]
            assert label_id == f"case-{first}-1"

            # The request again (a retry after a lost answer) decides nothing more, and a
            # transition the case cannot make is a 409 naming the ones it can.
            retry = orjson.dumps({"status": "confirmed", "version": 1})
            status, again = http_json(f"{base}/cases/{first}", retry,
                                      {**auth, "Content-Type": "application/json"})
            assert status == 200 and again["changed"] is False and again["version"] == 2
            status, refused = http_json(f"{base}/cases/{first}",
                                        orjson.dumps({"status": "dismissed"}),
                                        {**auth, "Content-Type": "application/json"})
            assert status == 409 and refused["allowed"] == ["open"]

            # Exactly one label on the labels topic, and the models learned from it.
            labels_topic = demo.settings().kafka.topic("labels")
            async with TopicReader(bootstrap, [labels_topic]) as reader:
                await reader.until(lambda: any(r.get("event_id") == label_id
                                               for r in reader.records[labels_topic]),
                                   30, "the case's label")
                await reader.drain()
            mine = [r for r in reader.records[labels_topic] if r.get("event_id") == label_id]
            assert len(mine) == 1
            assert {k: mine[0][k] for k in ("entity", "entity_type", "pattern", "confirmed")} \
                == {"entity": alert["entity"], "entity_type": "borrower",
                    "pattern": "rollover_loan", "confirmed": True}
            outcome = 'fraudmon_model_label_outcomes{outcome="%s",pattern="rollover_loan"}'
            await until(lambda: sum(metrics_of(base).get(outcome % o, 0) for o in OUTCOMES)
                        > sum(before.get(outcome % o, 0) for o in OUTCOMES), 30,
                        "the label in the model's figures")
            if SHOTS:
                await page.screenshot(path=str(Path(SHOTS) / "console-case.png"))

            # 200 movements stay readable: 200 payers into one account and on to cash,
            # drawn by the same code, with no two parties' circles touching.
            spread = await page.evaluate(MANY)
            assert spread["nodes"] == 201 and spread["edges"] == 200
            assert spread["closest"] > 0, spread
            if SHOTS:
                await page.screenshot(path=str(Path(SHOTS) / "console-graph-200.png"))
            assert problems == []
    finally:
        assert demo.stop() == 0
