"""The wiki client against the fake: rate limits, paging edges, errors (real lark-oapi on the wire)."""

from __future__ import annotations

import pytest

from connectors.feishu.wiki import FeishuApiError, RateLimiter, WikiClient
from tests.connectors.feishu.wiki.fixtures import *
from tests.connectors.feishu.wiki.fixtures import SPACE, run_sync


def _times(fake, path_part):
    return [t for _, p, t in fake.requests if path_part in p]


def test_a_rate_limit_answer_is_waited_out_for_the_reset_time_then_retried(fake, index, source, wiki):
    doc = wiki.page(SPACE, "a", "内容。\n", title="A")
    fake.inject(f"/documents/{doc}/blocks", times=1, headers={"x-ogw-ratelimit-limit": "5",
                                                             "x-ogw-ratelimit-reset": "2"})
    report = run_sync(index, source)
    assert report.ok and report.added == 1
    limited, retried = _times(fake, f"/documents/{doc}/blocks")
    assert 2.0 <= retried - limited < 2.6  # waited what x-ogw-ratelimit-reset said, then went on


def test_the_rate_limit_code_on_http_400_is_waited_out_too(fake, index, source, wiki):
    doc = wiki.page(SPACE, "a", "内容。\n", title="A")
    fake.inject("/nodes", times=1, status=400)  # older APIs answer 400 + 99991400
    fake.inject(f"/documents/{doc}/blocks", times=2, status=400)
    report = run_sync(index, source)
    assert report.ok and report.added == 1
    nodes = _times(fake, "/nodes")
    blocks = _times(fake, "/blocks")
    assert len(nodes) == 2 and nodes[1] - nodes[0] >= 1.0
    assert len(blocks) == 3 and blocks[1] - blocks[0] >= 1.0 and blocks[2] - blocks[1] >= 1.0


def test_a_page_still_rate_limited_after_the_allowed_waits_fails_alone(fake, index, make_source, wiki):
    stuck = wiki.page(SPACE, "a", "内容一。\n", title="A")
    wiki.page(SPACE, "b", "内容二。\n", title="B")
    fake.inject(f"/documents/{stuck}/blocks", times=10, headers={"x-ogw-ratelimit-reset": "0"})
    report = run_sync(index, make_source(max_rate_limit_waits=3))
    assert report.added == 1 and [f["id"] for f in report.failed] == [stuck]
    assert fake.count(f"/documents/{stuck}/blocks") == 4


def test_docx_requests_stay_under_the_configured_rate(fake, index, make_source, wiki):
    for i in range(9):
        wiki.page(SPACE, f"p{i}", f"第 {i} 页。\n", title=f"P{i}")
    report = run_sync(index, make_source(docs_requests_per_second=4.0))
    assert report.added == 9
    times = _times(fake, "/blocks")
    per_second = [sum(1 for u in times if t <= u < t + 1.0) for t in times]
    assert max(per_second) <= 5  # Feishu's limit, as the server saw it (network jitter included)
    assert (times[-1] - times[0]) / (len(times) - 1) >= 0.245  # 4/s on average


def test_rate_limiter_allows_a_burst_then_spaces_calls():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = RateLimiter(2.0, burst=3, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.acquire()
    assert slept == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("n, pages", [(50, 1), (51, 2), (100, 2), (101, 3)])
def test_node_paging_at_exactly_the_page_size(fake, source, wiki, n, pages):
    for i in range(n):
        wiki.other(SPACE, f"dir/n{i:03d}", "sheet", f"表 {i}")
    wiki.page(SPACE, "dir", "目录。\n", title="Dir")
    listing = source.list_pages()
    assert listing.complete and len(listing.stubs) == n + 1
    assert fake.count("/nodes") == 1 + pages  # the top, then the folder's pages


def test_an_empty_result_page_with_has_more_is_paged_through(fake, source, wiki):
    for i in range(50):  # a whole first page of nodes the app may not see
        wiki.page(SPACE, f"dir/hidden{i:02d}", "看不到。\n", title=f"H{i}", hidden=True)
    for i in range(3):
        wiki.page(SPACE, f"dir/zvisible{i}", "看得到。\n", title=f"V{i}")
    wiki.page(SPACE, "dir", "目录。\n", title="Dir")
    listing = source.list_pages()
    assert sorted(s.title for s in listing.stubs) == ["Dir", "V0", "V1", "V2"]
    assert fake.count("/nodes") == 3


def test_a_document_of_more_than_500_blocks_is_read_in_pages(fake, source, wiki):
    body = "".join(f"第 {i} 段。\n\n" for i in range(1200))
    doc = wiki.page(SPACE, "long", body, title="Long")
    stub = source.list_pages().stubs[0]
    page = source.fetch_page(stub)
    assert fake.count(f"/documents/{doc}/blocks") == 3  # 1201 blocks with the page block
    assert "第 0 段。" in page.body and "第 1199 段。" in page.body


def test_the_fake_refuses_page_sizes_over_the_cap(fake, source, wiki):
    import lark_oapi as lark
    from lark_oapi.api.wiki.v2 import ListSpaceNodeRequest

    client = lark.Client.builder().app_id(fake.app_id).app_secret(fake.app_secret).domain(fake.url).build()
    resp = client.wiki.v2.space_node.list(ListSpaceNodeRequest.builder().space_id(SPACE).page_size(51).build())
    assert resp.code == 99992402 and not resp.success()
    ok = client.wiki.v2.space_node.list(ListSpaceNodeRequest.builder().space_id(SPACE).page_size(50).build())
    assert ok.success() and not ok.data.items


def test_string_ids_and_times_come_through_as_strings(fake, wiki):
    wiki.page(SPACE, "a", "内容。\n", title="A")
    client = WikiClient(fake.app_id, fake.app_secret, fake.url)
    node = next(client.children(SPACE))
    assert node.space_id == SPACE and node.obj_edit_time.isdigit() and node.node_type == "origin"


def test_an_unknown_document_is_an_error_naming_the_code(fake, wiki):
    client = WikiClient(fake.app_id, fake.app_secret, fake.url)
    with pytest.raises(FeishuApiError) as err:
        client.blocks("doxcnDOESNOTEXIST")
    assert err.value.code == 1770002 and err.value.status == 404


def test_a_rate_limit_pauses_every_caller_sharing_the_limiter():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    lim.acquire()
    lim.pause(2.0)
    lim.acquire()
    assert now[0] == pytest.approx(2.0)
