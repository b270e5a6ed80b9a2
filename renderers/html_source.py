"""Markdown and HTML sources for HtmlRenderer, marked with where each block starts.

Block elements get a ``data-om-src`` attribute holding the source offset they come
from; after layout, the page each marked block lands on gives the pages' spans. Pure
text processing: no browser here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from optical_memory.errors import RenderError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["mark_html_blocks", "markdown_to_html"]

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog"),
        *("div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "hgroup", "hr", "li", "main", "nav", "ol", "p"),
        *("pre", "section", "summary", "table", "tr", "ul"),
    }
)
_NEWLINE = re.compile(r"\r\n?|\n")


def _line_starts(text: str) -> list[int]:
    """Character offset of the start of each line, splitting as markdown-it does."""
    return [0, *(match.end() for match in _NEWLINE.finditer(text))]


def _line_offset(starts: list[int], line: int, length: int) -> int:
    return starts[line] if line < len(starts) else length


def _markdown() -> MarkdownIt:
    try:
        from markdown_it import MarkdownIt
    except ImportError as exc:
        raise RenderError(
            "Markdown rendering needs markdown-it-py: pip install 'optical-memory[html]'"
        ) from exc
    md = MarkdownIt("commonmark").enable("table")
    md.add_render_rule("fence", _render_code)
    md.add_render_rule("code_block", _render_code)
    md.add_render_rule("softbreak", _render_break)
    md.add_render_rule("hardbreak", _render_break)
    return md


def _render_code(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """A code block with each line wrapped in a span that carries its source offset."""
    token = tokens[idx]
    offsets: list[int] = token.meta.get("om_lines", [])
    lines = token.content.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    body = "\n".join(
        f'<span data-om-src="{offsets[i]}">{escape(line, quote=False)}</span>'
        if i < len(offsets)
        else escape(line, quote=False)
        for i, line in enumerate(lines)
    )
    language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    css_class = f' class="language-{escape(language)}"' if language else ""
    start = token.meta.get("om_start", "")
    return f'<pre data-om-src="{start}"><code{css_class}>{body}\n</code></pre>\n'


def _render_break(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """A line break followed by an empty marker for the source line that follows it."""
    token = tokens[idx]
    tag = "<br />\n" if token.type == "hardbreak" else "\n"
    offset = token.meta.get("om_line")
    return tag if offset is None else f'{tag}<span data-om-src="{offset}"></span>'


def markdown_to_html(text: str) -> str:
    """Render CommonMark (with tables) to HTML whose blocks carry ``data-om-src`` source offsets.

    Args:
        text: Markdown source.

    Returns:
        HTML in which block elements, code lines and source line breaks carry a
        ``data-om-src`` attribute: the character offset in ``text`` where they start.

    Raises:
        RenderError: markdown-it-py is not installed.
    """
    md = _markdown()
    tokens = md.parse(text)
    starts = _line_starts(text)
    length = len(text)
    for token in tokens:
        if token.map is None:
            continue
        first, last = token.map
        if token.nesting == 1:
            token.attrSet("data-om-src", str(_line_offset(starts, first, length)))
        elif token.type in ("fence", "code_block"):
            skip = 1 if token.type == "fence" else 0
            token.meta["om_start"] = _line_offset(starts, first, length)
            token.meta["om_lines"] = [
                _line_offset(starts, line, length) for line in range(first + skip, last)
            ]
        elif token.type == "inline" and token.children:
            line = first
            for child in token.children:
                if child.type in ("softbreak", "hardbreak"):
                    line += 1
                    child.meta["om_line"] = _line_offset(starts, line, length)
                elif child.type == "html_inline":
                    line += child.content.count("\n")
    return str(md.renderer.render(tokens, md.options, {}))


class _BlockTagFinder(HTMLParser):
    """Collects the offset and name length of every block-level start tag."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__(convert_charrefs=True)
        self._starts = starts
        self.tags: list[tuple[int, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            line, column = self.getpos()
            self.tags.append((self._starts[line - 1] + column, len(tag)))


def mark_html_blocks(html: str) -> str:
    """Add a ``data-om-src`` source offset to every block-level start tag of ``html``.

    Args:
        html: An HTML fragment or document.

    Returns:
        The same HTML with `` data-om-src="N"`` inserted after each block tag's name,
        where ``N`` is the offset of the tag's ``<`` in ``html``.
    """
    finder = _BlockTagFinder([0, *(m.end() for m in re.finditer("\n", html))])
    finder.feed(html)
    finder.close()
    parts: list[str] = []
    done = 0
    for offset, name_length in finder.tags:
        cut = offset + 1 + name_length
        if html[offset : offset + 1] != "<" or cut < done:
            continue
        parts += [html[done:cut], f' data-om-src="{offset}"']
        done = cut
    parts.append(html[done:])
    return "".join(parts)
