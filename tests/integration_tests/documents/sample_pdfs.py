"""Real PDFs for the RAG front end's tests and benchmark, made offline and fast.

- :func:`text_pdf`: pages of the project's own corpus printed to PDF by Chromium (a real
  text layer), one corpus excerpt per page so the page count is exact;
- :func:`scanned_pdf`: the same pages rasterised and saved as images only (no text layer);
- :func:`encrypted_pdf`: a PDF under the standard security handler with a user password
  (RC4, revision 2), as any PDF writer makes it;
- :func:`truncated_pdf`: a real PDF cut short;
- :func:`many_pages_pdf`: a PDF of blank pages made with pypdfium2's own document API.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "corpus"
CHARS_PER_PAGE = 1400
_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def corpus_excerpts(pages: int) -> list[str]:
    """``pages`` excerpts of the English corpus, one per page, cut at word boundaries."""
    words = " ".join(
        (CORPUS / name).read_text(encoding="utf-8")
        for name in ("english_prose.txt", "english_technical.txt")
    ).split()
    excerpts, index = [], 0
    for number in range(1, pages + 1):
        taken: list[str] = [f"Page {number}."]
        while sum(len(word) + 1 for word in taken) < CHARS_PER_PAGE:
            taken.append(words[index % len(words)])
            index += 1
        excerpts.append(" ".join(taken))
    return excerpts


def text_pdf(path: Path, pages: int) -> Path:
    """Print ``pages`` corpus excerpts to ``path`` with Chromium (one per page)."""
    from playwright.sync_api import sync_playwright

    from optical_memory.renderers.html import find_chromium

    sections = "".join(
        f"<section><p>{html.escape(text)}</p></section>" for text in corpus_excerpts(pages)
    )
    document = (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        "body{font:15px/1.45 'DejaVu Serif',serif;margin:0}"
        "section{break-after:page;padding:0}</style></head>"
        f"<body>{sections}</body></html>"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), args=_CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_content(document)
            page.pdf(
                path=str(path),
                format="A4",
                margin={"top": "2cm", "bottom": "2cm", "left": "2cm", "right": "2cm"},
            )
        finally:
            browser.close()
    return path


def scanned_pdf(source: Path, path: Path, *, pages: int | None = None, dpi: float = 144) -> Path:
    """Rasterise the first ``pages`` pages of ``source`` into an image-only PDF."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(source))
    try:
        count = len(pdf) if pages is None else min(pages, len(pdf))
        images = [pdf[index].render(scale=dpi / 72).to_pil().convert("L") for index in range(count)]
    finally:
        pdf.close()
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return path


def truncated_pdf(source: Path, path: Path) -> Path:
    """The first half of ``source``'s bytes (no cross-reference table, no trailer)."""
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def many_pages_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` blank A4 pages."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    try:
        for _ in range(pages):
            pdf.new_page(595, 842).close()
        pdf.save(str(path))
    finally:
        pdf.close()
    return path


_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    box = list(range(256))
    j = 0
    for i in range(256):
        j = (j + box[i] + key[i % len(key)]) % 256
        box[i], box[j] = box[j], box[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + box[i]) % 256
        box[i], box[j] = box[j], box[i]
        out.append(byte ^ box[(box[i] + box[j]) % 256])
    return bytes(out)


def encrypted_pdf(path: Path, user_password: str = "secret", owner_password: str = "owner") -> Path:
    """A one-page PDF encrypted with RC4 40-bit (PDF 1.1 standard security handler, R2)."""
    user = (user_password.encode("latin-1") + _PAD)[:32]
    owner = (owner_password.encode("latin-1") + _PAD)[:32]
    o_value = _rc4(hashlib.md5(owner).digest()[:5], user)
    permissions = -4
    file_id = hashlib.md5(b"optical-memory test").digest()
    key = hashlib.md5(
        user + o_value + (permissions & 0xFFFFFFFF).to_bytes(4, "little") + file_id
    ).digest()[:5]
    u_value = _rc4(key, _PAD)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <"
        + o_value.hex().encode()
        + b"> /U <"
        + u_value.hex().encode()
        + b"> /P "
        + str(permissions).encode()
        + b" >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Encrypt 4 0 R "
        f"/ID [<{file_id.hex()}> <{file_id.hex()}>] >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    path.write_bytes(bytes(out))
    return path
