"""The ``optical-memory`` command line."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from tqdm import tqdm

from optical_memory.errors import OpticalMemoryError

if TYPE_CHECKING:
    from optical_memory.renderers import RenderedPage

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Optical context compression: text to page images that decay with age, read back on CPU.",
)

TIERS = ["large", "base", "small", "tiny"]


def _fail(exc: Exception) -> typer.Exit:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


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
        raise _fail(OpticalMemoryError(f"cannot read {file}: {exc}")) from exc
    try:
        pages = _render(text, file, tier=tier, preset=preset, kind=kind, html=html)
        out.mkdir(parents=True, exist_ok=True)
    except (OpticalMemoryError, OSError) as exc:
        raise _fail(exc) from exc
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
    decoder: Annotated[
        Optional[str],  # noqa: UP045 (typer reads the annotation at run time on 3.10)
        typer.Option(help="'rapidocr', 'tesseract', or 'none'; default: best available."),
    ] = None,
    tier: Annotated[str, typer.Option(help="Tier of the pages.")] = "small",
    preset: Annotated[str, typer.Option(help="'dense' or 'legible'.")] = "dense",
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Also save the pages and a JSON report here."),
    ] = None,
) -> None:
    """Compress the bundled demo conversation into pages and read them back on the CPU."""
    from optical_memory.demo import run_demo

    try:
        report = run_demo(decoder=decoder, tier=tier, preset=preset, out=out, progress=True)
    except OpticalMemoryError as exc:
        raise _fail(exc) from exc
    typer.echo(report.summary())


def main() -> None:
    """Entry point of the ``optical-memory`` script."""
    app()


if __name__ == "__main__":
    main()
