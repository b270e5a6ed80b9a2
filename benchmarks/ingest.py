"""RAG front end throughput: pages/s per flow and decoder, one process against Ray on the
same machine in the same run, the pipeline's overhead over a bare loop, and read-back
accuracy against the text layer.

Inputs are made on the spot, offline: a PDF of ``--pages`` corpus excerpts printed by
Chromium (a real text layer) and its scan (the pages rasterised at 144 dpi, no text).
Runs, each into a fresh tenant of a Redis store the script starts itself:

- ``text-born``: the text-layer PDF, no decoder (rasterise, text layer, store);
- ``text-born+tesseract``: the same with Tesseract reading every page back, accuracy
  against the text layer;
- ``image-born+tesseract``: the scan, one process with one Tesseract worker, one process
  with one per core, and Ray Data with one actor per core (one worker each);
- ``bare loop``: the same rasterise + decode of the scan with nothing else (no PNG, no
  store, no records), one Tesseract worker per core: the pipeline overhead is the
  one-process time over this;
- ``image-born+rapidocr`` on ``--rapidocr-pages`` pages, one process and Ray.

Tesseract runs single-threaded per page (OMP_THREAD_LIMIT=1, set for the whole run; left to
size its own OpenMP pool, one worker ran 5x slower on this shared machine). RapidOCR's
onnxruntime uses every core for one page in one process (it has no thread setting), so its
one-process run is not a one-core run. Prints JSON to stdout.

Usage: python benchmarks/ingest.py [--pages 100] [--rapidocr-pages 8] > results/ingest.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the sample PDFs and the Redis server helper of the tests

from optical_memory.decoders import RapidOCRDecoder, TesseractDecoder  # noqa: E402
from optical_memory.documents import IngestSummary, ingest  # noqa: E402
from optical_memory.metrics import char_accuracy  # noqa: E402
from tests.integration_tests.documents import sample_pdfs  # noqa: E402
from tests.integration_tests.store.redis_servers import RedisServer  # noqa: E402


def run(name: str, summary: IngestSummary, **extra: Any) -> dict[str, Any]:
    accuracies = [page.accuracy for page in summary.pages if page.accuracy is not None]
    row = {
        "run": name,
        "pages": summary.written,
        "seconds": round(summary.seconds, 2),
        "pages_per_second": round(summary.pages_per_second, 3),
        "failures": len(summary.failures),
        "mean_accuracy": round(sum(accuracies) / len(accuracies), 4) if accuracies else None,
        **extra,
    }
    print(json.dumps(row), file=sys.stderr)
    return row


def scan_accuracy(summary: IngestSummary, reference: list[str]) -> float:
    """Mean accuracy of the scan's OCR text against the text PDF's text layer."""
    scores = [
        char_accuracy(ref, page.text) for ref, page in zip(reference, summary.pages, strict=False)
    ]
    return round(sum(scores) / len(scores), 4)


def bare_loop(pdf: Path, decoder: TesseractDecoder, dpi: float, batch: int) -> dict[str, Any]:
    import pypdfium2 as pdfium

    started = time.perf_counter()
    document = pdfium.PdfDocument(str(pdf))
    count = len(document)
    for start in range(0, count, batch):
        images = [
            document[index].render(scale=dpi / 72).to_pil()
            for index in range(start, min(count, start + batch))
        ]
        decoder.decode(images)
    document.close()
    seconds = time.perf_counter() - started
    row = {
        "run": "bare loop: rasterise + tesseract (workers=2)",
        "pages": count,
        "seconds": round(seconds, 2),
        "pages_per_second": round(count / seconds, 3),
    }
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # equal threads per worker in every run (see above)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--rapidocr-pages", type=int, default=8)
    args = parser.parse_args()
    import ray

    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        text_pdf = sample_pdfs.text_pdf(work / "text.pdf", args.pages)
        scan = sample_pdfs.scanned_pdf(text_pdf, work / "scan.pdf")
        small_scan = sample_pdfs.scanned_pdf(
            text_pdf, work / "scan-small.pdf", pages=args.rapidocr_pages
        )
        server = RedisServer(work / "redis").start()
        url = server.url

        def fresh() -> str:
            return f"bench-{uuid.uuid4().hex[:8]}"

        try:
            text_born = ingest([text_pdf], store=url, tenant=fresh())
            reference = [page.text for page in text_born.pages]
            rows.append(run("text-born, no decoder (1 process)", text_born, flow="text-born"))
            rows.append(
                run(
                    "text-born + tesseract (1 process, workers=2)",
                    ingest(
                        [text_pdf],
                        store=url,
                        tenant=fresh(),
                        decoder=TesseractDecoder(workers=cores),
                    ),
                    flow="text-born",
                    decoder="tesseract",
                )
            )
            one = ingest([scan], store=url, tenant=fresh(), decoder=TesseractDecoder(workers=1))
            rows.append(
                run(
                    "image-born + tesseract (1 process, workers=1)",
                    one,
                    flow="image-born",
                    decoder="tesseract",
                    accuracy_vs_text_layer=scan_accuracy(one, reference),
                )
            )
            both = ingest(
                [scan], store=url, tenant=fresh(), decoder=TesseractDecoder(workers=cores)
            )
            rows.append(
                run(
                    "image-born + tesseract (1 process, workers=2)",
                    both,
                    flow="image-born",
                    decoder="tesseract",
                    accuracy_vs_text_layer=scan_accuracy(both, reference),
                )
            )
            with TesseractDecoder(workers=cores) as decoder:
                bare = bare_loop(scan, decoder, 144, 4)
            rows.append(bare)
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
            started = time.perf_counter()
            ray.data.range(1).materialize()  # warm up: the first dataset starts the workers
            warmup = time.perf_counter() - started
            on_ray = ingest(
                [scan], store=url, tenant=fresh(), decoder="tesseract", ray_address="local"
            )
            rows.append(
                run(
                    f"image-born + tesseract (Ray, {cores} actors x 1 worker)",
                    on_ray,
                    flow="image-born",
                    decoder="tesseract",
                    ray_warmup_seconds=round(warmup, 2),
                    same_text_as_one_process=[p.text for p in on_ray.pages]
                    == [p.text for p in both.pages],
                )
            )
            rapid_one = ingest(
                [small_scan],
                store=url,
                tenant=fresh(),
                decoder=functools.partial(RapidOCRDecoder, workers=cores),
            )
            rows.append(
                run(
                    f"image-born + rapidocr (1 process, workers={cores})",
                    rapid_one,
                    flow="image-born",
                    decoder="rapidocr",
                    accuracy_vs_text_layer=scan_accuracy(rapid_one, reference),
                )
            )
            rapid_ray = ingest(
                [small_scan], store=url, tenant=fresh(), decoder="rapidocr", ray_address="local"
            )
            rows.append(
                run(
                    f"image-born + rapidocr (Ray, {cores} actors x 1 thread)",
                    rapid_ray,
                    flow="image-born",
                    decoder="rapidocr",
                    same_text_as_one_process=[p.text for p in rapid_ray.pages]
                    == [p.text for p in rapid_one.pages],
                )
            )
            ray.shutdown()
        finally:
            server.stop()
    pipeline = rows[3]["seconds"]
    result = {
        "machine": {"cpus": cores, "python": platform.python_version()},
        "pages": args.pages,
        "dpi": 144,
        "runs": rows,
        "pipeline_overhead_vs_bare_loop": round(pipeline / bare["seconds"] - 1, 4),
        "ray_speedup_vs_one_worker": round(rows[2]["seconds"] / rows[5]["seconds"], 3),
        "ray_speedup_vs_one_process_all_cores": round(rows[3]["seconds"] / rows[5]["seconds"], 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
