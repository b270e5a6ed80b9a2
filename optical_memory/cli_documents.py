"""The ``ingest-docs`` command: the RAG front end from the command line.

``optical-memory ingest-docs PATHS... --store URL`` ingests files, folders and globs into
a store and prints a summary (``--json`` for JSON); ``--ray`` runs the same ingestion on
a local Ray instance, ``--ray-address ADDRESS`` on a cluster (an option with an optional
value would swallow the next argument, so the address has its own). Exit code 0 when
every document was ingested, 1 when some failed (each listed with its reason), 2 on a
library error.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from optical_memory.cli_memory import StoreOption, TenantOption, fail
from optical_memory.errors import OpticalMemoryError

__all__ = ["ingest_docs"]


def ingest_docs(
    paths: Annotated[
        list[str], typer.Argument(help="Files, folders (searched recursively) or globs.")
    ],
    store: StoreOption = None,
    tenant: TenantOption = "default",
    decoder: Annotated[
        Optional[str],  # noqa: UP045 (typer reads the annotation at run time on 3.10)
        typer.Option(
            help="Decoder reading page images: 'tesseract', 'rapidocr', 'vllm', 'deepseek-ocr'."
            " Needed for scans and photos; on pages with text it measures read-back accuracy."
        ),
    ] = None,
    reader: Annotated[str, typer.Option(help="Reader profile text is rendered for.")] = (
        "deepseek-ocr"
    ),
    dpi: Annotated[float, typer.Option(help="Resolution PDF pages are rasterised at.")] = 144,
    max_pages: Annotated[int, typer.Option(help="Largest page count of a document.")] = 10_000,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run on Ray (a local instance unless --ray-address).")
    ] = False,
    ray_address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Ray cluster to join ('auto', 'ray://head:10001'); implies --ray.",
        ),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Decoder actors on Ray (default: the cluster's CPUs)."),
    ] = None,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Ingest documents (PDF, PNG/JPEG/TIFF, HTML, Markdown, text) into pages with text."""
    from optical_memory.documents import ingest
    from optical_memory.memory import default_store_path

    url = store or f"sqlite:///{default_store_path()}"
    try:
        summary = ingest(
            paths,
            store=url,
            tenant=tenant,
            decoder=decoder,
            reader=reader,
            dpi=dpi,
            max_pages=max_pages,
            progress=progress,
            ray_address=ray_address or ("local" if ray else None),
            ray_workers=workers,
        )
    except OpticalMemoryError as exc:
        raise fail(exc) from exc
    report = summary.to_dict()
    if json_:
        typer.echo(json.dumps(report, indent=1))
    else:
        typer.echo(
            f"{report['pages']} page(s) from {len(paths)} path(s): {report['written']} written,"
            f" {report['skipped_documents']} document(s) unchanged, {report['seconds']} s"
            f" ({report['pages_per_second']} pages/s)"
        )
        for failure in summary.failures:
            typer.secho(f"failed: {failure.source}: {failure.reason}", err=True, fg="red")
    if summary.failures:
        raise typer.Exit(code=1)
