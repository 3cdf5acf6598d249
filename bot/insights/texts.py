"""Every string the owners' page and the digest show, in Chinese and English (one catalogue)."""

from __future__ import annotations

from typing import Any

from bot.answering.texts import Lang

_TEXTS: dict[str, dict[str, str]] = {
    "title": {"zh": "知识库缺口与使用情况", "en": "Wiki gaps and usage"},
    "login_title": {"zh": "管理页登录", "en": "Sign in to the owners' page"},
    "login_token": {"zh": "管理令牌（WIKIBOT_ADMIN_TOKEN）", "en": "Admin token (WIKIBOT_ADMIN_TOKEN)"},
    "login_button": {"zh": "登录", "en": "Sign in"},
    "login_failed": {"zh": "令牌不正确。", "en": "That token is not right."},
    "logout": {"zh": "退出登录", "en": "Sign out"},
    "space_all": {"zh": "全部空间", "en": "All spaces"},
    "since": {"zh": "时间范围", "en": "Period"},
    "days": {"zh": "最近 {n} 天", "en": "last {n} days"},
    "apply": {"zh": "查看", "en": "Show"},
    "questions": {"zh": "提问", "en": "Questions"},
    "covered_share": {"zh": "有答案占比", "en": "Covered"},
    "not_covered": {"zh": "无答案", "en": "Not covered"},
    "weak": {"zh": "依据不足", "en": "Weakly grounded"},
    "down": {"zh": "👎", "en": "👎"},
    "up": {"zh": "👍", "en": "👍"},
    "askers": {"zh": "提问人数", "en": "People asking"},
    "index_size": {"zh": "索引：{pages} 页，{chunks} 段，{questions} 条提问记录",
                   "en": "Index: {pages} pages, {chunks} passages, {questions} logged questions"},
    "hidden": {"zh": "另有 {n} 条来自限定空间群聊的提问，只在对应空间下显示：{spaces}",
               "en": "{n} more questions come from chats limited to some spaces; they are shown only under "
                     "those spaces: {spaces}"},
    "chart_daily": {"zh": "每日提问（按平台）", "en": "Questions per day, by platform"},
    "chart_covered": {"zh": "每日有答案占比", "en": "Covered share per day"},
    "chart_feedback": {"zh": "每周 👍 / 👎", "en": "👍 / 👎 per week"},
    "gaps": {"zh": "知识缺口：知识库答不上来的问题", "en": "Gaps: what the wiki could not answer"},
    "no_gaps": {"zh": "这段时间没有缺口。", "en": "No gaps in this period."},
    "topic_meta": {"zh": "{questions} 次提问 · {askers} 人 · {first} – {last}",
                   "en": "{questions} questions · {askers} people · {first} – {last}"},
    "kind_extend": {"zh": "建议补充此页", "en": "Extend this page"},
    "kind_new": {"zh": "知识库尚无相关页面", "en": "No page at all"},
    "nearest": {"zh": "最接近的页面", "en": "Nearest pages"},
    "reason_not_covered": {"zh": "无答案 {n}", "en": "not covered {n}"},
    "reason_weak": {"zh": "依据不足 {n}", "en": "weakly grounded {n}"},
    "reason_down": {"zh": "👎 {n}", "en": "👎 {n}"},
    "askers_ids": {"zh": "提问人", "en": "Asked by"},
    "top_topics": {"zh": "问得最多的话题", "en": "Most-asked topics"},
    "cited_pages": {"zh": "被引用最多的页面", "en": "Most-cited pages"},
    "down_pages": {"zh": "答案常被 👎 的页面", "en": "Pages whose answers get 👎"},
    "never_cited": {"zh": "从未被引用的页面", "en": "Pages never cited"},
    "page": {"zh": "页面", "en": "Page"},
    "cited": {"zh": "引用", "en": "Cited"},
    "syncs": {"zh": "最近同步", "en": "Last syncs"},
    "no_syncs": {"zh": "还没有同步记录。", "en": "No sync has run yet."},
    "sync_when": {"zh": "开始时间", "en": "Started"},
    "sync_result": {"zh": "新增 / 更新 / 删除 / 失败", "en": "added / updated / removed / failed"},
    "sync_seconds": {"zh": "耗时（秒）", "en": "Seconds"},
    "none": {"zh": "无", "en": "none"},
    "digest_title": {"zh": "知识库缺口周报：{start} – {end}", "en": "Wiki gaps, {start} – {end}"},
    "digest_intro": {"zh": "这段时间共 {questions} 次提问，{covered} 有答案；以下话题知识库没能回答：",
                     "en": "{questions} questions in this period, {covered} covered; the wiki could not "
                           "answer these topics:"},
    "digest_none": {"zh": "这段时间没有知识缺口。", "en": "No gaps in this period."},
    "digest_admin": {"zh": "查看管理页", "en": "Open the owners' page"},
}


def t(key: str, lang: Lang, **values: Any) -> str:
    s = _TEXTS[key][lang]
    return s.format(**values) if values else s


def pick_lang(query: str | None, accept_language: str) -> Lang:
    """`?lang=en|zh` first, then the browser's first preference; Chinese by default."""
    if query in ("zh", "en"):
        return query  # type: ignore[return-value]
    first = accept_language.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"
