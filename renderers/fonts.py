"""Finding font files and choosing, per character, the first font that has a glyph."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from optical_memory.errors import FontNotFoundError

__all__ = ["FALLBACK_FAMILIES", "FREETYPE_LOCK", "FontChain", "FontFace", "find_font"]

# Known install locations per family, tried after fontconfig (Debian, Fedora, Arch, macOS).
_KNOWN_PATHS: dict[str, tuple[str, ...]] = {
    "DejaVu Sans": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/DejaVuSans.ttf",
    ),
    "DejaVu Sans:bold": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ),
    "DejaVu Sans Mono": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/dejavu-sans-mono-fonts/DejaVuSansMono.ttf",
        "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
    ),
    "Noto Sans CJK SC": (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    ),
    "Symbola": (
        "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
        "/usr/share/fonts/gdouros-symbola/Symbola.ttf",
        "/usr/share/fonts/TTF/Symbola.ttf",
    ),
}

# Collection index of the Simplified Chinese face in Noto's CJK .ttc files.
_KNOWN_INDEX = {"Noto Sans CJK SC": 2}

#: Families tried, in order, for characters the main font lacks.
FALLBACK_FAMILIES = ("DejaVu Sans", "Noto Sans CJK SC", "Symbola")

#: Held around every FreeType call on a shared font object (drawing, measuring a new
#: run, probing coverage): font objects are shared process-wide through ``_load``.
FREETYPE_LOCK = threading.RLock()

#: Drawn for a character that no font of the chain has, so nothing vanishes silently.
PLACEHOLDER = "\ufffd"

_NONCHARACTER = "\U0010ffff"  # never has a glyph: its bitmap is the font's .notdef


@dataclass(frozen=True)
class FontFace:
    """A font file (and face index inside a collection) for one family and style."""

    family: str
    path: str
    index: int = 0

    def load(self, size: float) -> ImageFont.FreeTypeFont:
        """Load the face at ``size`` pixels per em."""
        return _load(self.path, self.index, size)


@functools.lru_cache(maxsize=256)
def _load(path: str, index: int, size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=size, index=index)


def _fontconfig(pattern: str) -> tuple[str, int, str] | None:
    """Ask fontconfig for ``pattern``; returns (file, index, family) or ``None``."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        out = subprocess.run(
            [fc_match, "-f", "%{file}|%{index}|%{family}", pattern],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.split("|")
    if len(parts) != 3 or not parts[0]:
        return None
    file, index, families = parts
    return file, int(index or 0), families


@functools.lru_cache(maxsize=64)
def find_font(family: str) -> FontFace:
    """Find the file of a font family, e.g. ``"DejaVu Sans"`` or ``"DejaVu Sans:bold"``.

    Looks in ``$OPTICAL_MEMORY_FONT_DIR`` first, then asks fontconfig (accepting its
    answer only if it is the family asked for, since fontconfig always answers with
    something), then known install paths, then the DejaVu copies inside matplotlib.

    Raises:
        FontNotFoundError: Nowhere had it; the message lists everything tried.
    """
    name = family.split(":")[0]
    tried: list[str] = []
    for path in _env_candidates(family):
        tried.append(path)
        if Path(path).is_file():
            return FontFace(name, path, _KNOWN_INDEX.get(name, 0))
    answer = _fontconfig(family)
    tried.append(f"fontconfig: fc-match {family!r}" + ("" if answer else " (no fc-match)"))
    if answer is not None:
        file, index, families = answer
        if name.lower() in (f.strip().lower() for f in families.split(",")):
            return FontFace(name, file, index)
    for path in (*_KNOWN_PATHS.get(family, ()), *_bundled_candidates(family)):
        tried.append(path)
        if Path(path).is_file():
            return FontFace(name, path, _KNOWN_INDEX.get(name, 0))
    raise FontNotFoundError(
        f"font {family!r} not found; tried: {'; '.join(tried)}. Install it "
        "(Debian: apt install fonts-dejavu-core fonts-noto-cjk fonts-symbola) or set "
        "OPTICAL_MEMORY_FONT_DIR to a folder holding the file."
    )


def _env_candidates(family: str) -> list[str]:
    folder = os.environ.get("OPTICAL_MEMORY_FONT_DIR")
    if not folder:
        return []
    return [str(Path(folder) / Path(p).name) for p in _KNOWN_PATHS.get(family, ())]


def _bundled_candidates(family: str) -> list[str]:
    """DejaVu files inside an installed matplotlib wheel: a last resort on bare systems."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    return [str(folder / Path(p).name) for p in _KNOWN_PATHS.get(family, ())[:1]]


class FontChain:
    """A main face and its fallbacks; picks, per character, the first face with a glyph.

    Fallback faces that are not installed are skipped; only the main face is required.
    """

    def __init__(self, main: FontFace, fallbacks: tuple[FontFace, ...]) -> None:
        self.faces = (main, *[f for f in fallbacks if f.path != main.path])
        self._notdef: dict[int, tuple[tuple[int, int], bytes]] = {}
        self._choice: dict[str, int] = {}

    @classmethod
    def for_family(cls, family: str) -> FontChain:
        """Chain ``family`` with every installed family of :data:`FALLBACK_FAMILIES`."""
        fallbacks = []
        for name in FALLBACK_FAMILIES:
            try:
                fallbacks.append(find_font(name))
            except FontNotFoundError:
                continue
        return cls(find_font(family), tuple(fallbacks))

    def face_index(self, char: str) -> int:
        """Index into :attr:`faces` of the first face that draws ``char``, or -1 if none."""
        choice = self._choice.get(char)
        if choice is None:
            with FREETYPE_LOCK:
                choice = next((i for i in range(len(self.faces)) if self._has(i, char)), -1)
            self._choice[char] = choice
        return choice

    def _has(self, index: int, char: str) -> bool:
        # Probe at a fixed size: a missing glyph renders as the face's .notdef box.
        font = self.faces[index].load(24)
        if index not in self._notdef:
            self._notdef[index] = _signature(font, _NONCHARACTER)
        try:
            return _signature(font, char) != self._notdef[index]
        except (UnicodeEncodeError, ValueError, OSError):
            return False


def _signature(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)
