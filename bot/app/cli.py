"""The `wikibot` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as ProgressBar

from bot.app.settings import ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Answer a team's questions from its wiki, in Feishu, Slack and the terminal.")
console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def main() -> None:
    try:
        app()
    except (ConfigError, UserError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except Exception as exc:  # index locked / model mismatch / embedder missing
        from retrieval.embedders import EmbedderError
        from retrieval.index import IndexError_

        if isinstance(exc, (IndexError_, EmbedderError)):
            err.print(f"[red]error:[/red] {exc}")
            sys.exit(2)
        raise


def _settings(json_logs: bool = False, **overrides: Any) -> Settings:
    from bot.infra.logs import configure, secret_values

    settings = load_settings()
    configure(settings.wikibot.log_level, secret_values(settings), json_lines=json_logs)
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "jieba", "qdrant_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if overrides:
        settings = settings.model_copy(update=overrides)
    return settings


@contextmanager
def _progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    if not enabled or not err.is_terminal:  # no bar in pipes and CI logs
        yield lambda i, n: None
        return
    with ProgressBar(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(i: int, n: int) -> None:
            bar.update(task, completed=i, total=n)

        yield update


def sample_wiki_path() -> Path:
    return Path(str(resources.files("bot") / "sample_wiki"))


# ----- commands -----------------------------------------------------------------------------------
@app.command()
def demo(question: Optional[str] = typer.Argument(None, help="Answer this and exit; without it, ask in a loop."),
         as_json: bool = typer.Option(False, "--json", help="Print the reply as JSON.")) -> None:
    """Index the bundled sample wiki into the embedded index and answer questions from it."""
    from bot.app.factories import open_bot
    from retrieval.sources import MarkdownFolderSource
    from retrieval.sync import sync_wiki

    settings = _settings()
    settings = settings.model_copy(update={"qdrant": settings.qdrant.model_copy(update={"collection_prefix": "demo"})})
    bot = open_bot(settings)
    try:
        with _progress("Indexing the sample wiki") as progress:
            report = sync_wiki(bot.index, MarkdownFolderSource(sample_wiki_path()), progress=progress)
        if not as_json:
            err.print(f"Sample wiki: {bot.index.count_pages()} pages, {bot.index.count_chunks()} passages "
                      f"({report.chunks_embedded} embedded now, {report.seconds:.1f}s). "
                      + ("Answers by Claude." if settings.llm_enabled else
                         "No ANTHROPIC_API_KEY: answers are extractive (quoted passages)."))
        if question is not None:
            _print_reply(asyncio.run(_ask(bot, question)), as_json)
            return
        _repl(bot)
    finally:
        asyncio.run(bot.aclose())


def _repl(bot: Any) -> None:
    from bot.answering.models import Question

    examples = [line.split(" | ")[0] for line in (sample_wiki_path().parent / "sample_questions.txt")
                .read_text(encoding="utf-8").splitlines() if line.strip()][:4] \
        if (sample_wiki_path().parent / "sample_questions.txt").exists() else []
    if examples:
        err.print("Try: " + " / ".join(examples))
    err.print("Type a question (empty line or Ctrl-D to quit). Follow-ups keep the context.")
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                q = console.input("[bold cyan]? [/bold cyan]")
            except (EOFError, KeyboardInterrupt):
                break
            if not q.strip():
                break
            reply = loop.run_until_complete(bot.answer(Question(q, platform="cli", chat_id="terminal",
                                                                thread_id="repl")))
            _print_reply(reply, False)
    finally:
        loop.close()


async def _ask(bot: Any, question: str, spaces: tuple[str, ...] | None = None) -> Any:
    from bot.answering.models import Question

    return await bot.answer(Question(question, platform="cli", allowed_spaces=spaces))


def _print_reply(reply: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(reply.to_json(), ensure_ascii=False, indent=2))
        return
    console.print(Markdown(reply.answer))
    from bot.answering.texts import text

    label = text("references", reply.language)
    if reply.references:
        console.print(f"\n[bold]{label}[/bold]")
        for i, r in enumerate(reply.references, 1):
            console.print(f" [{i}] {r.title} — {r.url}")
            console.print("     " + r.excerpt.replace("\n", " ")[:200], style="dim")
    if reply.others_asked:
        console.print(f"\n[bold]{text('others_asked', reply.language)}[/bold]")
        for o in reply.others_asked:
            console.print(f" • {o.question} ({o.asked_at:%Y-%m-%d})")
    console.print(f"\n[dim]{reply.notice}[/dim]\n")


@app.command()
def index(path: Path = typer.Argument(..., help="A folder of markdown pages; file name without .md is the page id."),
          rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and embed everything again."),
          url_base: str = typer.Option("", help="Page URL = this + file path (default: file:// URLs)."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Index a folder of markdown pages: new and changed pages are written, vanished ones removed."""
    from bot.app.factories import open_index
    from retrieval.sources import MarkdownFolderSource
    from retrieval.sync import sync_wiki

    if not path.is_dir():
        raise UserError(f"{path} is not a folder")
    settings = _settings()
    idx = open_index(settings, check=not rebuild)  # a rebuild drops and recreates the collections itself
    try:
        with _progress("Indexing") as progress:
            report = sync_wiki(idx, MarkdownFolderSource(path, url_base), full=rebuild, progress=progress)
        data = {**report.to_dict(), "pages": idx.count_pages(), "chunks": idx.count_chunks()}
    finally:
        idx.close()
    if as_json:
        print(json.dumps(data))
    else:
        console.print(f"Indexed {path}: {report.added} added, {report.updated} updated, {report.unchanged} "
                      f"unchanged, {report.removed} removed; {report.chunks_embedded} passages embedded in "
                      f"{report.seconds:.1f}s. Index: {data['pages']} pages, {data['chunks']} passages.")


@app.command()
def ask(question: str, as_json: bool = typer.Option(False, "--json"),
        space: list[str] = typer.Option(None, "--space", help="Only these spaces (repeatable).")) -> None:
    """Answer one question from the index."""
    from bot.app.factories import open_bot

    bot = open_bot(_settings())
    try:
        reply = asyncio.run(_ask(bot, question, tuple(space) if space else None))
    finally:
        asyncio.run(bot.aclose())
    _print_reply(reply, as_json)


@app.command()
def ref(words: str, as_json: bool = typer.Option(False, "--json"),
        space: list[str] = typer.Option(None, "--space", help="Only these spaces (repeatable).")) -> None:
    """Reference lookup: matching pages and passages, nothing generated."""
    from bot.answering.commands import format_ref_markdown
    from bot.app.factories import open_bot

    bot = open_bot(_settings())
    try:
        result = asyncio.run(bot.ref(words, tuple(space) if space else None))
    finally:
        asyncio.run(bot.aclose())
    if as_json:
        print(json.dumps({"query": result.query, "references": [
            {"page_id": r.page_id, "title": r.title, "url": r.url, "excerpt": r.excerpt,
             "heading_path": list(r.heading_path), "space": r.space} for r in result.references]},
            ensure_ascii=False, indent=2))
    else:
        console.print(Markdown(format_ref_markdown(result)))


@app.command("eval")
def eval_(docs: Path = typer.Option(..., exists=True, file_okay=False),
          questions: Path = typer.Option(..., exists=True, dir_okay=False),
          unanswerable: Optional[Path] = typer.Option(None, exists=True, dir_okay=False),
          mode: str = typer.Option("", help="hybrid, dense or sparse (default: retrieval.mode)"),
          as_json: bool = typer.Option(False, "--json"),
          signals: Optional[Path] = typer.Option(None, help="Write per-question signals (for tuning) here.")) -> None:
    """Index DOCS into a fresh index, run the questions, print retrieval and no-answer quality."""
    from bot.app.factories import build_embedder
    from bot.app.evaluate import run_eval

    settings = _settings()
    chosen = mode or settings.retrieval.mode
    if chosen not in ("hybrid", "dense", "sparse"):
        raise UserError("--mode must be hybrid, dense or sparse")
    embedder = build_embedder(settings)
    with _progress("Evaluating") as progress:
        result = run_eval(docs, questions, unanswerable, embedder, settings.retrieval.chunk_size,
                          settings.retrieval.chunk_overlap, chosen,  # type: ignore[arg-type]
                          progress=lambda stage, i, n: progress(i, n))
    if signals:
        signals.write_text(json.dumps(result.signals, ensure_ascii=False))
    if as_json:
        print(json.dumps(result.metrics))
        return
    console.print(f"embedder {embedder.name}, mode {chosen}: {result.chunks} passages indexed in "
                  f"{result.index_seconds:.1f}s ({result.chunks / max(result.index_seconds, 1e-9):.1f}/s)")
    for key, value in result.metrics.items():
        console.print(f"  {key:20s} {value:.3f}" if isinstance(value, float) else f"  {key:20s} {value}")
    for lang, m in result.by_language.items():
        console.print(f"  [{lang}] " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in m.items()))


@app.command("copy-index")
def copy_index(to: str = typer.Option(..., "--to", help="URL of the Qdrant server, e.g. http://qdrant:6333"),
               replace: bool = typer.Option(False, "--replace", help="Overwrite collections the server already has."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Copy the embedded index (and question log) into a Qdrant server, vectors included, nothing re-embedded."""
    from retrieval.engines.copy import copy_embedded_index_to

    settings = _settings()
    report = copy_embedded_index_to(settings.data_dir, to, settings.qdrant.api_key.get_secret_value(),
                                    settings.qdrant.collection_prefix, replace=replace)
    if as_json:
        print(json.dumps(report.counts))
    else:
        console.print("Copied " + ", ".join(f"{k}: {v} points" for k, v in report.counts.items())
                      + f" to {to}. Set QDRANT_URL={to} to use it.")


@app.command()
def sync(full: bool = typer.Option(False, "--full", help="Re-embed everything (rebuild the index)."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """One sync of the configured Feishu wiki into the index, with a progress bar and a report."""
    from bot.app.sync_command import run_sync_command

    raise typer.Exit(run_sync_command(_settings(), full=full, as_json=as_json))


@app.command()
def gaps(since: str = typer.Option("30d", help="How far back: 30d, 12h, 8w or a date (empty: everything)."),
         space: Optional[str] = typer.Option(None, "--space", help="Only this space (shows its limited chats too)."),
         as_json: bool = typer.Option(False, "--json"),
         topics: int = typer.Option(20, help="How many topics to list.")) -> None:
    """What people asked that the wiki could not answer, grouped into topics; how the wiki is used."""
    from bot.app.owners import gap_report_command

    raise typer.Exit(gap_report_command(_settings(), since=since, space=space, as_json=as_json, topics=topics,
                                        console=console))


@app.command()
def admin() -> None:
    """The wiki owners' page (/admin) on its own, over the same data as `serve` (WIKIBOT_ADMIN_TOKEN)."""
    from bot.app.owners import run_admin

    raise typer.Exit(run_admin(_settings(json_logs=True)))


@app.command()
def serve(worker_socket: Optional[str] = typer.Option(None, hidden=True,
                                                      help="internal: run as the worker behind serve's front")
          ) -> None:
    """The bot: Feishu and/or Slack adapters, the HTTP endpoints and the sync schedule."""
    from bot.app.serve import run

    raise typer.Exit(run(_settings(json_logs=True), worker_socket=worker_socket))


if __name__ == "__main__":  # pragma: no cover
    main()
