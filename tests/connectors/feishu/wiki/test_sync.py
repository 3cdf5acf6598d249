"""Syncing a Feishu wiki (the fake, read through the real lark-oapi client) into a real embedded index."""

from __future__ import annotations

import pytest

from retrieval.sync import SyncStopped
from tests.connectors.feishu.wiki.fixtures import *
from tests.connectors.feishu.wiki.fixtures import OTHER_SPACE, SPACE, URL_BASE, run_sync, snapshot

LORA = "## 原理\n\nLoRA 在冻结的权重旁边加入低秩矩阵，只训练这部分参数。\n\n## 显存\n\nQLoRA 把底座量化到 4 比特，单卡 24GB 可以微调 13B 模型。\n"
GPU = "每人最多同时申请 4 张 A100 显卡，单个任务最长运行 72 小时。\n\n- 申请入口：GPUHub\n- 审批：组长\n"
VLLM = "## Serving\n\nvLLM uses PagedAttention to manage the KV cache.\n\n```bash\nvllm serve MODEL\n```\n"


@pytest.fixture
def handbook(wiki):
    """A small tree: ml/{lora, vllm}, ops/gpu."""
    ids = {
        "ml": wiki.page(SPACE, "ml", "机器学习团队的页面。\n", title="机器学习"),
        "lora": wiki.page(SPACE, "ml/lora", LORA, title="LoRA 微调指南"),
        "vllm": wiki.page(SPACE, "ml/vllm", VLLM, title="Serving LLMs with vLLM"),
        "ops": wiki.page(SPACE, "ops", "运维。\n", title="运维"),
        "gpu": wiki.page(SPACE, "ops/gpu", GPU, title="GPU 集群使用规范"),
    }
    return ids


def test_first_sync_indexes_every_page_with_breadcrumb_and_url(index, source, handbook):
    report = run_sync(index, source)
    assert (report.added, report.updated, report.unchanged, report.removed) == (5, 0, 0, 0)
    assert report.ok and report.chunks_embedded == index.count_chunks() > 5
    pages, _ = snapshot(index)
    lora = next(p for p in pages.values() if p["page_id"] == handbook["lora"])
    assert lora["title"] == "LoRA 微调指南" and lora["path"] == ["机器学习"]
    assert lora["url"] == URL_BASE + "lora" and lora["space"] == SPACE
    assert lora["meta"]["source"] == "feishu" and lora["meta"]["obj_edit_time"]
    hit = index.search("单卡 24GB 可以微调多大的模型", k=1)[0]
    assert hit.page_id == handbook["lora"] and hit.path == ("机器学习",) and "24GB" in hit.text


def test_a_resync_without_changes_downloads_no_body_and_embeds_nothing(fake, index, source, handbook):
    run_sync(index, source)
    before = snapshot(index)
    blocks_before = fake.count("/blocks")
    index.embedder.passages = 0
    report = run_sync(index, source)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 5, 0)
    assert report.chunks_embedded == 0 and index.embedder.passages == 0
    assert fake.count("/blocks") == blocks_before  # no docx downloads at all
    assert snapshot(index) == before


def test_editing_one_page_re_embeds_only_its_changed_chunks(fake, index, source, wiki, handbook):
    run_sync(index, source)
    old_ids = set(index.page_states()[handbook["lora"]].chunk_ids)
    blocks_before = fake.count("/blocks")
    wiki.page(SPACE, "ml/lora", LORA.replace("13B", "33B"), title="LoRA 微调指南")
    report = run_sync(index, source)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    assert fake.count("/blocks") == blocks_before + 1
    new_ids = set(index.page_states()[handbook["lora"]].chunk_ids)
    assert report.chunks_embedded == len(new_ids - old_ids) == 1  # the 原理 section is reused
    assert "33B" in index.search("单卡 24GB 可以微调多大的模型", k=1)[0].text


def test_a_deleted_page_is_removed(index, source, wiki, handbook):
    run_sync(index, source)
    n = index.count_chunks()
    wiki.delete(SPACE, "ops/gpu")
    report = run_sync(index, source)
    assert report.removed == 1 and report.unchanged == 4
    assert handbook["gpu"] not in index.page_states()
    assert index.count_chunks() < n
    assert all(h.page_id != handbook["gpu"] for h in index.search("A100 显卡 申请", k=5))


def test_a_moved_page_keeps_one_copy_with_its_new_breadcrumb(index, make_source, wiki, handbook):
    wiki.space(OTHER_SPACE, "Infra")
    source = make_source((SPACE, OTHER_SPACE))
    run_sync(index, source)
    chunks = index.count_chunks()
    index.embedder.passages = 0
    wiki.move(SPACE, "ml/vllm", SPACE, "ops")  # within a space
    wiki.move(SPACE, "ops/gpu", OTHER_SPACE)  # to another synced space, at its top
    report = run_sync(index, source)
    assert (report.added, report.updated, report.removed) == (0, 2, 0)
    assert index.embedder.passages == 0  # same text, same chunks: nothing to embed
    states = index.page_states()
    assert len(states) == 5 and index.count_chunks() == chunks
    assert states[handbook["gpu"]].space == OTHER_SPACE
    vllm = index.search("PagedAttention KV cache", k=1)[0]
    assert vllm.page_id == handbook["vllm"] and vllm.path == ("运维",) and vllm.url == URL_BASE + "vllm"
    gpu = index.search("A100 显卡 申请", k=1)[0]
    assert gpu.page_id == handbook["gpu"] and gpu.space == OTHER_SPACE and gpu.path == ()


def test_a_page_moved_out_of_the_synced_spaces_is_removed(index, source, wiki, handbook):
    run_sync(index, source)
    wiki.move(SPACE, "ops/gpu", OTHER_SPACE)  # OTHER_SPACE is not synced here
    report = run_sync(index, source)
    assert report.removed == 1 and handbook["gpu"] not in index.page_states()


def test_a_failing_page_is_reported_and_keeps_its_old_version(fake, index, source, wiki, handbook):
    run_sync(index, source)
    wiki.page(SPACE, "ml/lora", LORA.replace("13B", "33B"), title="LoRA 微调指南")
    wiki.page(SPACE, "ops/gpu", GPU.replace("72", "48"), title="GPU 集群使用规范")
    fake.wiki.fail_docs[handbook["lora"]] = (403, 1770032, "forbidden")
    report = run_sync(index, source)
    assert not report.ok and report.updated == 1 and report.removed == 0
    assert report.failed == [{"page": "LoRA 微调指南", "id": handbook["lora"],
                              "reason": report.failed[0]["reason"]}]
    assert "1770032" in report.failed[0]["reason"]
    assert "13B" in index.search("单卡 24GB 可以微调多大的模型", k=1)[0].text  # the old version stays
    assert "48" in index.search("单个任务最长运行多久", k=1)[0].text
    del fake.wiki.fail_docs[handbook["lora"]]
    report = run_sync(index, source)
    assert report.ok and report.updated == 1 and "33B" in index.search("单卡 24GB 微调", k=1)[0].text


def test_a_listing_that_fails_part_way_deletes_nothing(fake, index, source, wiki, handbook):
    run_sync(index, source)
    wiki.delete(SPACE, "ml/vllm")
    wiki.page(SPACE, "ml/lora", LORA.replace("13B", "33B"), title="LoRA 微调指南")
    wiki.page(SPACE, "ops/new", "新页面：值班表。\n", title="值班")
    fake.wiki.fail_children["ops"] = (500, 1, "internal error")  # the ops branch cannot be listed
    report = run_sync(index, source)
    assert not report.ok and not report.listing_complete and report.errors
    assert report.removed == 0 and report.updated == 1  # what was listed is still synced
    states = index.page_states()
    assert handbook["gpu"] in states and handbook["vllm"] in states  # nothing deleted on a partial listing
    del fake.wiki.fail_children["ops"]
    report = run_sync(index, source)
    assert report.ok and report.removed == 1 and report.added == 1
    assert handbook["vllm"] not in index.page_states()


def test_unreadable_types_are_reported_and_shortcuts_are_not_indexed_twice(index, make_source, wiki, handbook):
    wiki.space(OTHER_SPACE, "Private")
    elsewhere = wiki.page(OTHER_SPACE, "secret", "只在另一个空间里。\n", title="Secret")
    wiki.other(SPACE, "ops/map", "mindnote", "架构脑图")
    wiki.other(SPACE, "deck", "slides", "季度汇报")
    wiki.shortcut(SPACE, "ops/lora-link", "lora")  # to a page that is synced anyway
    wiki.shortcut(SPACE, "secret-link", "secret")  # to a page in a space that is not synced
    report = run_sync(index, make_source((SPACE,)))
    assert report.added == 5 and report.ok
    assert sorted((s["type"], s["page"]) for s in report.skipped) == [
        ("mindnote", "架构脑图"), ("shortcut", "Secret"), ("slides", "季度汇报")]
    assert all(s["reason"] for s in report.skipped)
    assert "no Open API" in next(s["reason"] for s in report.skipped if s["type"] == "mindnote")
    states = index.page_states()
    assert elsewhere not in states and len(states) == 5
    assert index.page_states()[handbook["lora"]].chunk_ids  # indexed once, at its origin
    both = run_sync(index, make_source((SPACE, OTHER_SPACE)))
    assert both.added == 1 and [s["type"] for s in both.skipped].count("shortcut") == 0


@pytest.mark.parametrize("kill_on_call", [1, 2])
def test_a_sync_killed_half_way_then_rerun_equals_a_clean_sync(make_index, source, wiki, handbook, kill_on_call):
    clean, killed = make_index("clean"), make_index("killed")
    run_sync(clean, source)
    run_sync(killed, source)
    wiki.page(SPACE, "ml/lora", LORA.replace("13B", "33B"), title="LoRA 微调指南")  # embed call 1
    wiki.page(SPACE, "ops/new", "新页面：值班表。\n\n## 周末\n\n周末由两人轮值。\n", title="值班")  # call 2
    wiki.delete(SPACE, "ops/gpu")
    run_sync(clean, source)

    killed.embedder.kill_on_call = killed.embedder.calls + kill_on_call
    with pytest.raises(KeyboardInterrupt):
        run_sync(killed, source)
    assert any(s.pending_ids for s in killed.page_states().values())  # it really stopped mid-page
    killed.embedder.kill_on_call = None
    report = run_sync(killed, source)
    assert report.ok and report.removed == 1
    assert snapshot(killed) == snapshot(clean)  # same chunk ids, chunk payloads and page records


def test_a_sync_stopped_between_pages_leaves_a_consistent_index(make_index, source, handbook):
    ix = make_index()
    calls = []

    def progress(done, total):
        calls.append(done)

    stop_after = iter([False, False, True])
    with pytest.raises(SyncStopped):
        run_sync(ix, source, progress=progress, should_stop=lambda: next(stop_after, True))
    assert 0 < len(ix.page_states()) < 5
    assert all(not s.pending_ids for s in ix.page_states().values())
    report = run_sync(ix, source)
    assert report.ok and report.added + report.unchanged == 5 and report.removed == 0


def test_a_progress_callback_that_kills_the_sync_is_recovered(make_index, source, handbook):
    ix = make_index()

    def progress(done, total):
        if done == 3:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_sync(ix, source, progress=progress)
    report = run_sync(ix, source)
    assert report.ok and len(ix.page_states()) == 5 and (report.added, report.unchanged) == (2, 3)


def test_full_rebuilds_and_re_embeds_every_page(index, source, handbook):
    first = run_sync(index, source)
    index.embedder.passages = 0
    report = run_sync(index, source, full=True)
    assert report.full and report.ok and report.added == 5
    assert report.chunks_embedded == first.chunks_embedded == index.embedder.passages


def test_an_edit_that_leaves_the_text_alone_is_fetched_once_then_skipped(fake, index, source, wiki, handbook):
    run_sync(index, source)
    wiki.page(SPACE, "ml/lora", LORA, title="LoRA 微调指南")  # a new edit time, same text (e.g. an image)
    blocks = fake.count("/blocks")
    report = run_sync(index, source)
    assert report.unchanged == 5 and report.chunks_embedded == 0 and fake.count("/blocks") == blocks + 1
    report = run_sync(index, source)
    assert report.unchanged == 5 and fake.count("/blocks") == blocks + 1


def test_a_token_the_server_no_longer_accepts_is_replaced(fake, index, source, handbook):
    run_sync(index, source)
    fake.tokens.clear()  # every token issued so far is now refused with 99991663
    report = run_sync(index, source)
    assert report.ok and report.unchanged == 5
    assert fake.count("/tenant_access_token/") == 2


def test_wrong_credentials_stop_the_listing_and_change_nothing(fake, index, make_source, handbook):
    run_sync(index, make_source())
    from lark_oapi.core.token.manager import TokenManager

    from connectors.feishu.wiki import FeishuWikiSource, WikiClient

    TokenManager.cache = type(TokenManager.cache)()  # lark-oapi would reuse the good token (keyed by app id)
    bad = FeishuWikiSource(WikiClient(fake.app_id, "wrong", fake.url), [SPACE], URL_BASE)
    report = run_sync(index, bad)
    assert not report.ok and report.removed == 0 and len(index.page_states()) == 5
    assert "FEISHU_APP_SECRET" in report.errors[0]


def test_every_space_the_app_sees_is_synced_when_none_are_configured(index, make_source, wiki, handbook):
    wiki.space(OTHER_SPACE, "Infra")
    wiki.page(OTHER_SPACE, "k8s", "Kubernetes 集群的使用说明。\n", title="K8s")
    report = run_sync(index, make_source(()))
    assert report.added == 6 and {s.space for s in index.page_states().values()} == {SPACE, OTHER_SPACE}


def test_a_wiki_that_suddenly_lists_nothing_removes_nothing_unless_full(fake, index, make_source, wiki, handbook):
    run_sync(index, make_source(()))
    for page in ("ml", "ops"):
        wiki.delete(SPACE, page)
    report = run_sync(index, make_source(()))
    assert not report.ok and report.removed == 0 and "--full" in report.errors[0]
    assert len(index.page_states()) == 5
    report = run_sync(index, make_source(()), full=True)
    assert report.ok and index.count_pages() == 0
