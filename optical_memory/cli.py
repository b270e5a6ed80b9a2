"""The ``optical-memory`` command line."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from tqdm import tqdm

from optical_memory.cli_documents import ingest_docs
from optical_memory.cli_memory import COMMANDS, fail, reader_names
from optical_memory.errors import OpticalMemoryError

if TYPE_CHECKING:
    from optical_memory.renderers import RenderedPage

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    # Markdown: docstring paragraphs wrap to the terminal instead of keeping source lines.
    rich_markup_mode="markdown",
    help="Optical context compression: text to page images that decay with age, read back on CPU.",
)

TIERS = ["large", "base", "small", "tiny"]


@app.command()
def render(
    file: Annotated[Path, typer.Argument(help="Text, Markdown or source file ('-' for stdin).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages.")],
    tier: Annotated[str, typer.Option(help=f"Page tier: {', '.join(TIERS)}.")] = "small",
    preset: Annotated[str, typer.Option(help="'legible' or 'dense'.")] = "legible",
    kind: Annotated[str, typer.Option(help="'auto', 'prose' or 'code'.")] = "auto",
    html: Annotated[
        bool, typer.Option("--html", help="Render Markdown/HTML through Chromium.")
    ] = False,
) -> None:
    """Render FILE into page-000.png, page-001.png, ... and pages.json in OUT."""
    try:
        # newline="": keep \r\n and \r as they are, so page spans index the file itself.
        if str(file) == "-":
            text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="").read()
        else:
            with file.open(encoding="utf-8", newline="") as handle:
                text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(OpticalMemoryError(f"cannot read {file}: {exc}")) from exc
    try:
        pages = _render(text, file, tier=tier, preset=preset, kind=kind, html=html)
        out.mkdir(parents=True, exist_ok=True)
    except (OpticalMemoryError, OSError) as exc:
        raise fail(exc) from exc
    index = []
    for page in tqdm(pages, desc="writing pages", unit="page", disable=len(pages) < 20):
        name = f"page-{page.index:03d}.png"
        page.image.save(out / name)
        width, height = page.image.size
        index.append(
            {
                "file": name,
                "tier": page.tier.label if page.tier else None,
                "width": width,
                "height": height,
                "span": list(page.span),
            }
        )
    (out / "pages.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    typer.echo(f"{len(pages)} page(s) of {len(text):,} characters written to {out}")


def _render(
    text: str, file: Path, *, tier: str, preset: str, kind: str, html: bool
) -> list[RenderedPage]:
    if html:
        from optical_memory.renderers import HtmlRenderer

        with HtmlRenderer(preset=preset) as renderer:
            if file.suffix.lower() in (".html", ".htm"):
                return renderer.render_html(text, tier=tier)
            return renderer.render_markdown(text, tier=tier)
    from optical_memory.renderers import TextRenderer

    if kind == "auto" and file.suffix.lower() in _CODE_SUFFIXES:
        kind = "code"
    return TextRenderer(preset=preset).render(text, tier=tier, kind=kind)  # type: ignore[arg-type]


_CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".rs",
        ".go",
        ".rb",
        ".php",
        ".cs",
        ".kt",
        ".swift",
        ".sh",
        ".sql",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".xml",
        ".css",
        ".scss",
        ".lua",
        ".r",
        ".jl",
        ".scala",
        ".hs",
        ".ml",
    ]
)


@app.command()
def demo(
    input_: Annotated[
        Optional[Path],  # noqa: UP045 (typer reads the annotation at run time on 3.10)
        typer.Option(
            "--input",
            help="Your conversation as JSON Lines (one message a line); default: the bundled one.",
        ),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write report.html, report.json and the sample pages here."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    store: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Store URL to run on (thread 'optical-memory-demo', cleared first, kept "
            "after); default: a temporary SQLite file."
        ),
    ] = None,
    reader: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--reader",
            "-r",
            help="Reader to report on (repeat or comma-separate); default: "
            "deepseek-ocr, openai, anthropic, gemini.",
        ),
    ] = None,
    budget: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Also fit each reader's context to this many tokens."),
    ] = None,
    readback: Annotated[
        bool, typer.Option(help="Read one page of each tier back with RapidOCR (CPU).")
    ] = True,
) -> None:
    """Add a long conversation to a memory turn by turn; show what each reader's context costs.

    Prints, per reader, the raw history's tokens against the context's (every turn, no
    budget cut), pages per tier, the read-back of one page per tier, and timings.
    """
    from optical_memory.demo import DEMO_READERS, run_demo
    from optical_memory.demo_report import report_dict, summary, write_report
    from optical_memory.jsonl import read_messages

    try:
        messages = None if input_ is None else read_messages(input_)
        report = run_demo(
            messages,
            readers=reader_names(reader, DEMO_READERS),
            store=store,
            budget=budget,
            readback=readback,
            source="bundled conversation" if input_ is None else str(input_),
            progress=True,
        )
        page = None if out is None else write_report(report, out)
    except (OpticalMemoryError, OSError) as exc:
        raise fail(exc) from exc
    if json_:
        typer.echo(json.dumps(report_dict(report, files=out is not None), indent=1))
    else:
        typer.echo(summary(report))
    if store is not None:
        typer.echo(
            f"the demo thread stays in the store: optical-memory inspect {report.thread} "
            "--store ...",
            err=json_,
        )
    if page is not None:
        typer.echo(f"report written to {page}", err=json_)


for _command in (*COMMANDS, ingest_docs):
    app.command()(_command)


def main() -> None:
    """Entry point of the ``optical-memory`` script."""
    app()


if __name__ == "__main__":
    main()
