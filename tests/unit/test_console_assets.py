"""The console's static files: all there, nothing loaded from elsewhere, and data written
into the page as text only (every identifier shown came in on a Kafka topic)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.web.console import ASSETS, SECURITY_HEADERS, load_assets

SCRIPTS = sorted(ASSETS.glob("*.js"))
MARKUP_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|"
                          r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*['\"`]")


def test_every_file_the_page_names_is_served() -> None:
    assets = load_assets()
    index = assets["index.html"][0].decode()
    named = set(re.findall(r'(?:src|href)="/ui/([^"]+)"', index))
    imported = {name for path in SCRIPTS
                for name in re.findall(r'from "\./([^"]+)"', path.read_text())}
    assert named | imported <= set(assets), (named | imported) - set(assets)
    assert {"console.js", "graph.js", "console.css"} <= named | imported
    assert assets["console.js"][1].startswith("text/javascript")


@pytest.mark.parametrize("path", sorted(ASSETS.iterdir()), ids=lambda p: p.name)
def test_nothing_is_loaded_from_elsewhere(path: Path) -> None:
    text = path.read_text()
    urls = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
    assert urls == set()


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_data_goes_into_the_page_as_text_only(path: Path) -> None:
    assert MARKUP_SINKS.findall(path.read_text()) == []


def test_the_sink_check_sees_markup() -> None:
    assert MARKUP_SINKS.search("row.innerHTML = alert.entity")
    assert MARKUP_SINKS.search("setTimeout('go()', 5)")


def test_the_pages_forbid_inline_script_and_framing() -> None:
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    index = (ASSETS / "index.html").read_text()
    assert "<script>" not in index
    assert not re.search(r"<[^>]+\son[a-z]+=", index)  # no inline handlers
