"""`/admin` as `wikibot serve` mounts it: the real HTTP app on 127.0.0.1, with and without the token,
then the page in a real browser (Debian's chromium, headless)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

from bot.answering.wikibot import WikiBot
from bot.app.owners import start_owners
from bot.app.serve import ServeState, build_http_app
from bot.app.settings import load_settings
from tests.bot.insights.conftest import LIMITED_CHAT, LIMITED_QUESTION, LIMITED_SPACE
from tests.bot.insights.paraphrases import PARAPHRASES
from tests.fakes.loopback import LoopbackServer

TOKEN = "admin-token-for-tests-0123456789"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
A_QUESTION = PARAPHRASES["dev-u006"][0]


def _serve_app(gaps_data, tmp_path, token: str):
    data_dir, index, _, _ = gaps_data
    config = tmp_path / "wikibot.toml"
    config.write_text(f'[access.chat_spaces]\n{LIMITED_CHAT} = ["{LIMITED_SPACE}"]\n', encoding="utf-8")
    settings = load_settings(environ={"WIKIBOT_DATA_DIR": str(data_dir), "WIKIBOT_ADMIN_TOKEN": token,
                                      "EMBEDDING_KIND": "usem3", "WIKIBOT_CONFIG": str(config)})
    bot = WikiBot(settings, index)
    state = ServeState(bot, [])
    state.extra_routes = start_owners(settings, bot).routes
    return build_http_app(state)


@pytest.fixture
def admin_server(gaps_data, tmp_path):
    with LoopbackServer(_serve_app(gaps_data, tmp_path, TOKEN)) as srv:
        yield srv


def test_no_question_text_without_the_token(admin_server):
    with httpx.Client(base_url=admin_server.url, follow_redirects=False) as c:
        script = c.get("/admin", headers={"Accept": "application/json"})
        assert script.status_code == 401 and script.headers["www-authenticate"].startswith("Bearer")
        browser = c.get("/admin", headers={"Accept": "text/html"})
        assert browser.status_code == 303 and browser.headers["location"].startswith("/admin/login")
        for wrong in ("", "Bearer nope", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
            r = c.get("/admin/report.json", headers={"Authorization": wrong})
            assert r.status_code == 401 and A_QUESTION not in r.text
        forged = c.get("/admin", headers={"Accept": "text/html", "Cookie": "wikibot_admin=9999999999.x.deadbeef"})
        assert forged.status_code == 303
        login = c.get("/admin/login")
        assert login.status_code == 200 and 'type="password"' in login.text and A_QUESTION not in login.text
        assert c.get("/healthz").status_code in (200, 503)  # the rest of serve is untouched


def test_a_script_with_the_bearer_token_gets_the_report(admin_server):
    with httpx.Client(base_url=admin_server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        report = c.get("/admin/report.json").json()
        examples = [q for t in report["gap_topics"] for q in t["examples"]]
        assert A_QUESTION in examples or any(q in examples for q in PARAPHRASES["dev-u006"])
        assert LIMITED_QUESTION not in str(report) and report["totals"]["hidden"] == 1
        scoped = c.get("/admin/report.json", params={"space": LIMITED_SPACE}).json()
        assert [t["examples"] for t in scoped["gap_topics"]] == [[LIMITED_QUESTION]]
        page = c.get("/admin", params={"lang": "en"})
        assert page.status_code == 200 and "Gaps: what the wiki could not answer" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


def test_login_refuses_cross_site_posts_and_wrong_tokens(admin_server):
    with httpx.Client(base_url=admin_server.url, follow_redirects=False) as c:
        c.get("/admin/login")
        csrf = c.cookies["wikibot_admin_login"]
        cross = c.post("/admin/login", data={"token": TOKEN, "csrf": csrf}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403 and "wikibot_admin=" not in cross.headers.get("set-cookie", "")
        no_csrf = c.post("/admin/login", data={"token": TOKEN, "csrf": "guess"})
        assert no_csrf.status_code == 403
        wrong = c.post("/admin/login", data={"token": "nope", "csrf": csrf})
        assert wrong.status_code == 401
        c.get("/admin/login")
        ok = c.post("/admin/login", data={"token": TOKEN, "csrf": c.cookies["wikibot_admin_login"]})
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
        assert c.get("/admin", headers={"Accept": "text/html"}).status_code == 200
        out = c.post("/admin/logout", data={"csrf": "forged"})
        assert out.status_code == 403  # a cross-site form cannot sign the owner out either


def test_admin_is_off_without_a_token(gaps_data, tmp_path):
    with LoopbackServer(_serve_app(gaps_data, tmp_path, "")) as srv:
        assert httpx.get(f"{srv.url}/admin").status_code == 404
        assert httpx.get(f"{srv.url}/admin/login").status_code == 404


def test_the_page_in_a_real_browser(admin_server):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (PyPI) is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tempfile.mkdtemp(prefix="wikibot-chromium-")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    try:
        with sync_api.sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=flags, viewport={"width": 390, "height": 844},
                                                        locale="zh-CN")
            page = ctx.new_page()
            page.goto(f"{admin_server.url}/admin")
            assert page.url.startswith(f"{admin_server.url}/admin/login")
            assert page.locator("input[type=password]").is_visible()
            assert A_QUESTION not in page.content() and "管理页登录" in page.content()

            page.fill("#token", "wrong-token")
            page.click("button[type=submit]")
            assert page.locator(".error").is_visible()

            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_url(f"{admin_server.url}/admin*")
            assert page.locator("article.topic").count() == 20  # the 20 most widely asked gaps
            assert page.get_by_text("知识缺口：知识库答不上来的问题").is_visible()
            assert page.locator("figure.chart svg.chart-svg").count() == 3
            assert page.locator("figure.chart rect.bar").count() > 0
            assert page.locator("figure.chart circle.point").count() > 0
            assert any(q in page.content() for q in (A_QUESTION, *PARAPHRASES["dev-u006"][1:]))
            assert LIMITED_QUESTION not in page.content()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
                "the page scrolls sideways on a phone"
            cookie = next(c for c in ctx.cookies() if c["name"] == "wikibot_admin")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            phone = ARTIFACTS / "admin-phone.png"
            page.screenshot(path=str(phone), full_page=True)

            page.click("a.lang")
            assert page.get_by_text("Gaps: what the wiki could not answer").is_visible()
            page.set_viewport_size({"width": 1280, "height": 900})
            desktop = ARTIFACTS / "admin-desktop.png"
            page.screenshot(path=str(desktop), full_page=True)
            print(f"\nscreenshots: {phone} {desktop}")

            page.click(".logout button")
            page.wait_for_url("**/admin/login*")
            page.goto(f"{admin_server.url}/admin")
            assert "/admin/login" in page.url
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
