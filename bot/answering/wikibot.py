"""The answering core: retrieve → decide whether the wiki covers it → generate or extract → reply.

`WikiBot` is what every adapter talks to. It holds no platform knowledge:
one `Question` in, one `Reply` out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Sequence

from bot.infra import metrics
from bot.infra.config import Settings
from bot.infra.coordination import Coordinator, make_coordinator
from bot.answering.access import AccessPolicy
from bot.answering.extractive import quote_block, trim_excerpt
from bot.answering.language import detect_language, has_words
from bot.answering.models import Citation, OtherAsked, Question, RefResult, Reference, Reply, Status, Turn
from bot.answering.questionlog import QuestionLog
from bot.answering.quotes import choose_quotes
from bot.answering.safety import strip_foreign_links
from bot.infra.state import StateDB
from bot.answering.texts import Lang, text
from retrieval.coverage import CoverageDecider
from retrieval.index import Hit, WikiIndex
from retrieval.relevance import Thresholds, thresholds_for

if TYPE_CHECKING:
    from bot.answering.coverage_check import CoverageVerdict
    from bot.answering.llm import ClaudeGenerator, Generation, Passage

log = logging.getLogger(__name__)
RETRIEVAL_WORKERS = max(1, min(4, os.cpu_count() or 1))
OnText = Callable[[str], Awaitable[None]]  # the answer so far, as it streams


class WikiBot:
    def __init__(self, settings: Settings, index: WikiIndex, *, state: StateDB | None = None,
                 generator: "ClaudeGenerator | None" = None, thresholds: Thresholds | None = None,
                 coordinator: Coordinator | None = None) -> None:
        self.settings = settings
        self.index = index
        self.embedder = index.embedder
        self.state = state or StateDB(Path(settings.data_dir) / "state.sqlite")
        self.questions = QuestionLog(index.engine, index.embedder, settings.qdrant.collection_prefix,
                                     lock=index.lock)
        self.generator = generator
        self.thresholds = thresholds or thresholds_for(index.embedder.name)
        # explicit thresholds (tests, tuning) mean the threshold rule; else the embedder's fitted model
        self.coverage = CoverageDecider(index.embedder.name, thresholds=self.thresholds, use_model=thresholds is None)
        self.coordinator = coordinator or make_coordinator(settings.redis.url.get_secret_value(),
                                                           Path(settings.data_dir), settings.qdrant.collection_prefix)
        # retrieval is CPU work, much of it holding the GIL: a few workers, taken in arrival order, keep a
        # burst from starving the event loop (acks) and answer the first askers first
        self._retrieval_pool = ThreadPoolExecutor(max_workers=RETRIEVAL_WORKERS, thread_name_prefix="retrieval")
        # which spaces an answer may use; `bot.app` gives it a resolver in `[access] mode = "asker"`
        a = settings.access
        self.access = AccessPolicy(a.spaces_for, mode=a.mode, cache_seconds=a.cache_seconds,
                                   max_group_members=a.max_group_members)

    def claim(self, key: str, ttl_seconds: float = 7 * 24 * 3600) -> bool:
        """True the first time an event or message id is seen, across restarts and replicas."""
        return self.coordinator.claim(key, ttl_seconds)

    async def aclose(self) -> None:
        if self.generator is not None:
            await self.generator.aclose()
        self._retrieval_pool.shutdown(wait=True, cancel_futures=True)
        self.state.close()
        self.coordinator.close()
        self.index.close()

    # ----- answering ----------------------------------------------------------------------------
    async def answer(self, question: Question, on_progress: OnText | None = None) -> Reply:
        """Answer one question. Never raises for anything the user or the LLM service did."""
        started = time.perf_counter()
        raw = question.text.strip()
        lang = detect_language(raw)
        if not raw or not has_words(raw):
            return Reply(answer=text("empty_question", lang), covered=False, mode="extractive", language=lang)
        refused = self._over_limit(question, lang)
        if refused is not None:
            return refused
        reply = await self._answer(question, raw, lang, on_progress)
        metrics.QUESTIONS.labels(question.platform, reply.mode, str(reply.covered).lower()).inc()
        metrics.ANSWER_SECONDS.labels(question.platform).observe(time.perf_counter() - started)
        return reply

    def _over_limit(self, question: Question, lang: Lang) -> Reply | None:
        """Per-user and per-chat question budgets, so one user cannot run up the LLM bill."""
        lim = self.settings.limits
        checks = []
        if question.user_id and lim.questions_per_user_per_hour:
            checks.append((f"user:{question.platform}:{question.user_id}", lim.questions_per_user_per_hour))
        if question.chat_id and lim.questions_per_chat_per_hour:
            checks.append((f"chat:{question.platform}:{question.chat_id}", lim.questions_per_chat_per_hour))
        for key, limit in checks:
            if not self.state.hit(key, 3600, limit):
                log.info("question refused: %s over %d questions/hour", key.split(":")[0], limit)
                return Reply(answer=text("rate_limited", lang, n=limit), covered=False, mode="extractive",
                             language=lang)
        return None

    async def _answer(self, question: Question, raw: str, lang: Lang,
                      on_progress: OnText | None) -> Reply:
        limit = self.settings.limits.max_question_chars
        prefix = ""
        if len(raw) > limit:
            raw, prefix = raw[:limit], text("truncated", lang, n=limit) + "\n\n"

        history = question.history
        if not history and question.thread_id:
            history = self.state.history(_conv_key(question))
        query = raw if not history else f"{history[-1].question}\n{raw}"

        qvec, hits, others, decision = await asyncio.get_running_loop().run_in_executor(
            self._retrieval_pool, self._retrieve_and_decide, raw, query, question.allowed_spaces,
            bool(history), question.allowed_readers)
        covered = decision.covered

        if not covered:
            reply = self._not_covered(hits, lang)
        elif self.generator is not None:
            reply = await self._generate(raw, hits, history, lang, on_progress)
        else:
            reply = self._extractive(hits, lang, question=query)
        if prefix:
            reply = _replace(reply, answer=prefix + reply.answer)

        qid = await asyncio.to_thread(
            self.questions.add, raw, qvec, platform=question.platform, chat_id=question.chat_id,
            user_id=question.user_id, covered=reply.covered, mode=reply.mode,
            page_ids=[r.page_id for r in reply.references], spaces=[r.space for r in reply.references],
            grounding=decision.probability)
        if question.thread_id:
            self.state.add_turn(_conv_key(question), raw, reply.answer)
        return _replace(reply, others_asked=tuple(others), question_id=qid)

    def _retrieve(self, raw: str, query: str, spaces: Sequence[str] | None,
                  follow_up: bool, readers: Sequence[str] | None = None
                  ) -> tuple[Any, list[Hit], list[OtherAsked]]:
        """Embed, search, and find similar earlier questions, in one worker-thread job.

        One job per question, not three: the thread pool serves jobs in arrival order, so with three
        a burst of questions would all be embedded before any was searched, and everyone would wait
        for the whole burst.
        """
        qvec = self.embedder.embed_query(raw)
        t = time.perf_counter()
        hits = self._search(query, spaces, qvec if not follow_up else None, readers)
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - t)
        # asker mode: not a question answered from pages narrower than their space, unless readable
        pages_ok = None if readers is None else (lambda ids: self.index.pages_readable(ids, readers))
        others = self.questions.similar(qvec, raw, allowed_spaces=spaces, pages_ok=pages_ok)
        return qvec, hits, others

    def _retrieve_and_decide(self, raw: str, query: str, spaces: Sequence[str] | None,
                             follow_up: bool, readers: Sequence[str] | None = None
                             ) -> tuple[Any, list[Hit], list[OtherAsked], Any]:
        """`_retrieve` and the coverage decision, in the worker thread: the decision is CPU work too
        (its first call loads jieba's IDF table and wordfreq, ~2 s), and on the event loop it would hold up
        every ack."""
        qvec, hits, others = self._retrieve(raw, query, spaces, follow_up, readers)
        return qvec, hits, others, self.coverage.decide(query, hits)

    def warm_up(self) -> None:
        """Load what loads lazily (the embedder's first encode, jieba's dictionary, the coverage
        decision's term weights), before serving."""
        self.embedder.embed_query("warm up 预热")
        hits = self.index.search("warm up 预热", k=1, mode=self.settings.retrieval.mode)
        self.coverage.decide("warm up 预热", hits)

    def _search(self, query: str, spaces: Sequence[str] | None, qvec: Any,
                readers: Sequence[str] | None = None) -> list[Hit]:
        r = self.settings.retrieval
        return self.index.search(query, k=r.top_k, spaces=spaces, mode=r.mode, dense_vector=qvec, readers=readers)

    def _not_covered(self, hits: list[Hit], lang: Lang) -> Reply:
        refs = _references(hits, limit=3)
        msg = text("not_covered" if refs else "not_covered_no_pages", lang)
        return Reply(answer=msg, covered=False, mode="extractive", references=refs,
                     notice=text("notice_extractive", lang), language=lang)

    def _extractive(self, hits: list[Hit], lang: Lang, reason: str = "",
                    question: str = "") -> Reply:
        quotes = choose_quotes(question, hits) if question else []
        top = [hits[q.hit_index] for q in quotes] or hits[:3]
        texts = [q.text for q in quotes] or [h.text for h in top]
        refs = _references(top, limit=3)
        number = {r.page_id: i + 1 for i, r in enumerate(refs)}
        parts = [text("llm_unavailable", lang)] if reason else []
        parts.append(text("extractive_intro", lang))
        citations = []
        allowed_urls = [h.url for h in hits]
        body = "\n\n".join(parts) + "\n\n"
        for h, quoted in zip(top, texts):
            if h.page_id not in number:  # a fourth page: _references keeps three
                continue
            heading = " › ".join([h.title, *[x for x in h.heading_path if x != h.title]])
            clean = strip_foreign_links(quoted, allowed_urls)
            block = f"**{heading}** [{number[h.page_id]}]\n{quote_block(clean)}"
            citations.append(Citation(len(body), len(body) + len(block), (number[h.page_id] - 1,),
                                      trim_excerpt(clean)))
            body += block + "\n\n"
        return Reply(answer=body.strip(), covered=True, mode="extractive", references=refs,
                     citations=tuple(citations), notice=text("notice_extractive", lang), language=lang,
                     degraded_reason=reason)

    async def _generate(self, question: str, hits: list[Hit], history: Sequence[Turn],
                        lang: Lang, on_progress: OnText | None) -> Reply:
        """Claude's coverage verdict and the answer's stream run side by side, within one deadline.

        The streamed text is held back until the verdict lands (at most `first_text_seconds`): `none`
        cancels the answer (not covered), `partial` starts it again with the missing part named, `full`
        or no verdict lets the text through. So the first text comes after max(verdict, first token)
        rather than after both in turn.
        """
        from bot.answering.llm import LLMError, Passage

        assert self.generator is not None
        a = self.settings.anthropic
        deadline = asyncio.get_running_loop().time() + a.answer_deadline_seconds
        passages = [Passage(h.title, h.url, h.text, h.heading_path) for h in hits]
        held = _HeldText(on_progress)

        def stream(note: str) -> "asyncio.Task[Generation]":
            return asyncio.create_task(self.generator.generate(  # type: ignore[union-attr]
                question, passages, history=[(t.question, t.answer) for t in history], language=lang,
                on_text=held.update, note=note, deadline=deadline))

        check = asyncio.create_task(self._check_coverage(question, passages, history,
                                                         min(a.first_text_seconds, a.answer_deadline_seconds)))
        answer = stream("")
        try:
            verdict = await check
            if verdict is not None and verdict.verdict == "none":
                return self._not_covered(hits, lang)
            if verdict is not None and verdict.verdict == "partial" and verdict.missing:
                await _cancel(answer)
                held.latest = None
                answer = stream(verdict.missing)  # the answer must name the part that is missing
            await held.release()
            async with asyncio.timeout_at(deadline + 1.0):  # generate() keeps the deadline; a backstop
                gen = await answer
        except TimeoutError:
            log.warning("LLM gave no answer within %.0fs; answering extractively", a.answer_deadline_seconds)
            metrics.LLM_ERRORS.labels("timeout").inc()
            return self._extractive(hits, lang, reason="timeout", question=question)
        except LLMError as exc:
            log.warning("LLM failed (%s): %s; answering extractively", exc.kind, exc)
            metrics.LLM_ERRORS.labels(exc.kind).inc()
            return self._extractive(hits, lang, reason=exc.kind, question=question)
        finally:
            await _cancel(check)
            await _cancel(answer)
        if not gen.text.strip():
            return self._extractive(hits, lang, reason="empty", question=question)
        return self._compose(gen, hits, lang)

    async def _check_coverage(self, question: str, passages: Sequence["Passage"], history: Sequence[Turn],
                              seconds: float) -> "CoverageVerdict | None":
        """Claude's full/partial/none verdict on the passages (bot/answering/coverage_check.py); None: no verdict."""
        from bot.answering.coverage_check import check_coverage

        assert self.generator is not None
        asked = question if not history else f"(Earlier question: {history[-1].question})\n{question}"
        try:
            async with asyncio.timeout(seconds):
                return await check_coverage(self.generator.client, self.generator.model, asked, passages)
        except TimeoutError:
            log.warning("coverage check gave no verdict within %.0fs; keeping the retrieval decision", seconds)
            return None

    def _compose(self, gen: "Generation", hits: list[Hit], lang: Lang) -> Reply:
        """The generated text with [n] markers after cited sentences, and references for cited pages."""
        cited = [i for seg in gen.segments for i in seg.passage_indexes if 0 <= i < len(hits)]
        order: list[str] = []
        for i in cited or range(min(3, len(hits))):
            if hits[i].page_id not in order:
                order.append(hits[i].page_id)
        number = {pid: n for n, pid in enumerate(order)}
        allowed_urls = [h.url for h in hits]
        answer, citations = "", []
        excerpts: dict[str, str] = {}
        for seg in gen.segments:
            seg_text = strip_foreign_links(seg.text, allowed_urls)
            start = len(answer)
            answer += seg_text
            refs = sorted({number[hits[i].page_id] for i in seg.passage_indexes if 0 <= i < len(hits)})
            if refs:
                answer = answer.rstrip() + "".join(f"[{n + 1}]" for n in refs)
                if seg_text.endswith(("\n", " ")):
                    answer += seg_text[len(seg_text.rstrip()):]
                citations.append(Citation(start, len(answer), tuple(refs), seg_text.strip()))
                for i in seg.passage_indexes:
                    if 0 <= i < len(hits):
                        excerpts.setdefault(hits[i].page_id, hits[i].text)
        by_page = {h.page_id: h for h in reversed(hits)}
        refs = tuple(
            Reference(pid, by_page[pid].title, by_page[pid].url,
                      trim_excerpt(strip_foreign_links(excerpts.get(pid, by_page[pid].text), allowed_urls)),
                      by_page[pid].heading_path, by_page[pid].space)
            for pid in order)
        return Reply(answer=answer.strip(), covered=True, mode="llm", references=refs,
                     citations=tuple(citations), notice=text("notice_llm", lang), language=lang)

    # ----- the other commands -------------------------------------------------------------------
    async def ref(self, words: str, allowed_spaces: Sequence[str] | None = None, limit: int = 8, *,
                  readers: Sequence[str] | None = None) -> RefResult:
        """Matching pages and passages for some words; nothing generated."""
        lang = detect_language(words)
        words = words.strip()[: self.settings.limits.max_question_chars]
        if not words:
            return RefResult(query=words, language=lang)
        hits = await asyncio.to_thread(self.index.search, words, limit, allowed_spaces,
                                       self.settings.retrieval.mode, readers=readers)
        return RefResult(query=words, references=_references(hits, limit=limit, per_page=2), language=lang)

    async def record_feedback(self, question_id: str, user_id: str, value: Literal["up", "down"]) -> bool:
        return await asyncio.to_thread(self.questions.record_feedback, question_id, user_id, value)

    def status(self) -> Status:
        last = None
        path = Path(self.settings.data_dir) / "last_sync.json"
        if path.exists():
            try:
                last = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                last = None
        return Status(self.index.count_pages(), self.index.count_chunks(), self.questions.count(),
                      self.embedder.name, self.generator is not None, last)


class _HeldText:
    """Streamed text held back until `release()`, then passed on as it comes."""

    def __init__(self, on_text: OnText | None) -> None:
        self.on_text = on_text
        self.latest: str | None = None
        self.released = False

    async def update(self, text: str) -> None:
        self.latest = text
        if self.released and self.on_text is not None:
            await self.on_text(text)

    async def release(self) -> None:
        self.released = True
        if self.latest is not None and self.on_text is not None:
            try:
                await self.on_text(self.latest)
            except Exception:
                log.warning("progress callback failed", exc_info=True)


async def _cancel(task: "asyncio.Task[Any]") -> None:
    """Cancel a task if it still runs, and wait for it; whatever it raised is of no interest now."""
    if not task.done():
        task.cancel()
    try:
        await task
    except BaseException as exc:  # noqa: BLE001 - its own cancellation or its failure
        if isinstance(exc, asyncio.CancelledError) and not task.cancelled():
            raise  # we are being cancelled ourselves


def _conv_key(q: Question) -> str:
    return f"{q.platform}:{q.chat_id}:{q.thread_id}"


def _references(hits: Sequence[Hit], limit: int, per_page: int = 1) -> tuple[Reference, ...]:
    out: list[Reference] = []
    used: dict[str, int] = {}
    for h in hits:
        if used.get(h.page_id, 0) >= per_page:
            continue
        if h.page_id not in used and len(used) >= limit:
            continue
        used[h.page_id] = used.get(h.page_id, 0) + 1
        excerpt = trim_excerpt(strip_foreign_links(h.text, [x.url for x in hits]))
        out.append(Reference(h.page_id, h.title, h.url, excerpt, h.heading_path, h.space))
    return tuple(out)


def _replace(reply: Reply, **changes: Any) -> Reply:
    from dataclasses import replace

    return replace(reply, **changes)


__all__ = ["WikiBot"]
