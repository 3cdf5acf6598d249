"""For the wiki's owners: the gap report, the /admin page and the digest, built from the settings.

Part of the composition root: it opens the index, applies the access rules and the privacy setting,
and gives the digest the platform connectors' own API clients to post with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.app.factories import open_index
from bot.app.settings import Settings
from bot.insights.service import Insights

if TYPE_CHECKING:
    from bot.insights.digest import DigestJob, DigestSchedule, Sender


def open_insights(settings: Settings, index: Any = None) -> Insights:
    """The insights over the configured index (opened here unless given) and its question log."""
    return Insights.open(index if index is not None else open_index(settings),
                         prefix=settings.qdrant.collection_prefix, chat_spaces=settings.access.spaces_for,
                         data_dir=settings.data_dir, show_askers=settings.admin.show_askers)


def gap_report_command(settings: Settings, *, since: str, space: str | None, as_json: bool, topics: int,
                       console: Any) -> int:
    """`wikibot gaps`: the report printed (or as JSON); exit 0, or 2 for a bad --since."""
    import json

    from bot.insights.console import print_report
    from bot.insights.questions import Scope, parse_since
    from bot.insights.report import ReportOptions

    try:
        start = parse_since(since)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    insights = open_insights(settings)
    try:
        report = insights.report(Scope(since=start, space=space),
                                 ReportOptions(topics=topics, show_askers=settings.admin.show_askers))
    finally:
        insights.index.close()
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print_report(report, console)
    return 0


def owners_routes(settings: Settings, insights: Insights) -> list[Any]:
    """The /admin routes (none while WIKIBOT_ADMIN_TOKEN is empty)."""
    from bot.insights.admin import admin_routes
    from bot.insights.auth import AdminAuth

    auth = AdminAuth(settings.wikibot.admin_token.get_secret_value(), settings.admin.session_hours * 3600)
    return admin_routes(insights, auth)


def run_admin(settings: Settings) -> int:
    """`wikibot admin`: only the owners' page, over the configured index, until Ctrl-C."""
    import logging

    import uvicorn
    from starlette.applications import Starlette

    log = logging.getLogger(__name__)
    if not settings.wikibot.admin_token.get_secret_value():
        print("error: the owners' page is off: set WIKIBOT_ADMIN_TOKEN (or [wikibot] admin_token)")
        return 2
    insights = open_insights(settings)
    try:
        app = Starlette(routes=owners_routes(settings, insights))
        w = settings.wikibot
        log.info("owners' page on http://%s:%s/admin", w.http_host, w.http_port)
        uvicorn.run(app, host=w.http_host, port=w.http_port, log_level="warning", log_config=None,
                    access_log=False, lifespan="off")
    finally:
        insights.index.close()
    return 0


@dataclass
class Owners:
    """What `serve` runs for the owners: the /admin routes and the digest schedule (or none)."""

    routes: list[Any]
    digest: "DigestSchedule | None" = None

    def shutdown(self) -> None:
        if self.digest is not None:
            self.digest.shutdown()


def digest_senders(settings: Settings) -> list[tuple[str, "Sender"]]:
    """Where the digest goes: the configured Feishu chat and/or Slack channel, through each connector's
    own API client."""
    from functools import partial

    out: list[tuple[str, Sender]] = []
    a = settings.admin
    if a.digest_feishu_chat and settings.feishu.enabled:
        from connectors.feishu.api import FeishuApi
        from connectors.feishu.digest import post_digest as feishu_post

        f = settings.feishu
        api = FeishuApi(f.app_id, f.app_secret.get_secret_value(), f.domain)
        out.append(("feishu", partial(feishu_post, api, a.digest_feishu_chat)))
    if a.digest_slack_channel and settings.slack.enabled:
        from connectors.slack.app import make_client
        from connectors.slack.digest import post_digest as slack_post

        out.append(("slack", partial(slack_post, make_client(settings.slack), a.digest_slack_channel)))
    return out


def digest_job(settings: Settings, insights: Insights, coordinator: Any) -> "DigestJob":
    from bot.insights.digest import DigestJob

    a = settings.admin
    return DigestJob(insights, coordinator, digest_senders(settings), days=a.digest_days, topics=a.digest_topics,
                     admin_url=a.public_url)


def start_owners(settings: Settings, bot: Any) -> Owners:
    """In `serve` (on its event loop): the /admin routes over the bot's own index, and the digest."""
    import logging

    from bot.insights.digest import DigestSchedule

    insights = open_insights(settings, bot.index)
    owners = Owners(owners_routes(settings, insights))
    if settings.wikibot.digest_cron:
        job = digest_job(settings, insights, bot.coordinator)
        if not job.senders:
            logging.getLogger(__name__).warning(
                "WIKIBOT_DIGEST_CRON is set but there is nowhere to post: set ADMIN_DIGEST_FEISHU_CHAT and/or "
                "ADMIN_DIGEST_SLACK_CHANNEL (with that platform configured)")
        else:
            owners.digest = DigestSchedule(job, settings.wikibot.digest_cron)
            owners.digest.start()
    return owners
