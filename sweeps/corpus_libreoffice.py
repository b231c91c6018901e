"""LibreOffice's help pages as a real, offline parallel corpus (MPL-2.0).

Debian ships the help per language as `libreoffice-help-<lang>`. Every language has the same
HTML files under `usr/share/libreoffice/help/<LANG>/text/`, and paragraphs carry the same `id`
attributes, so aligning `en-US` with another language by (file, id) gives human translations.

Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the cache
folder (no root needed); each language's paragraphs are parsed once and cached as JSON.
Where `apt-get` is missing, point the loader at an already-extracted help folder with the
source `libreoffice:/path/to/usr/share/libreoffice/help`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

from muit_core import DataError, atomic_write_text, cache_dir
from sweeps.pairs import CorpusEntry, Pair, normalise_space

log = logging.getLogger(__name__)

LIBREOFFICE_SOURCE = "libreoffice"  # the source string; `libreoffice:HELP_DIR` for a folder
ENGLISH_FOLDER = "en-US"
HELP_SUBDIR = Path("usr/share/libreoffice/help")
PARSE_CACHE_VERSION = 1  # bump when the paragraph parser changes

# Language codes with a Debian `libreoffice-help-<code lowercased>` package (bookworm), and the
# folder name inside it. The codes are the project's language keys everywhere.
LIBREOFFICE_LANGUAGES: tuple[str, ...] = (
    "ca", "cs", "da", "de", "dz", "el", "es", "et", "eu", "fi", "fr", "gl", "hi", "hu", "id",
    "it", "ja", "km", "ko", "nl", "om", "pl", "pt", "pt-BR", "ru", "sk", "sl", "sv", "tr", "ug",
    "uk", "vi", "zh-CN", "zh-TW",
)  # fmt: skip

_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_VOID_TAGS = frozenset({"img", "br", "meta", "input", "link", "hr", "source", "embed", "wbr"})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "head", "title"})


class _ParagraphParser(HTMLParser):
    """Collects the text of each `<p id=...>`/`<hN id=...>` element.

    Hidden switch variants (`<span hidden="true" id="MAC...">`, `WRITER...`) are dropped except
    the `default...` one, which is what a reader sees without a platform or module switch.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[str, str] = {}
        self._stack: list[tuple[str, bool]] = []  # (tag, starts a skipped subtree)
        self._skip_depth = 0
        self._current_id: str | None = None
        self._current_tag: str | None = None
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            return
        attr = dict(attrs)
        element_id = attr.get("id") or ""
        hidden = "hidden" in attr and not element_id.startswith("default")
        skipped = tag in _SKIP_TAGS or hidden
        self._stack.append((tag, skipped))
        if skipped:
            self._skip_depth += 1
        elif tag in _PARAGRAPH_TAGS and element_id and self._current_id is None:
            self._current_id, self._current_tag, self._parts = element_id, tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS or all(t != tag for t, _ in self._stack):
            return
        while self._stack:
            open_tag, skipped = self._stack.pop()
            if skipped:
                self._skip_depth -= 1
            if open_tag == self._current_tag and self._current_id is not None:
                text = normalise_space("".join(self._parts))
                if text:
                    self.paragraphs.setdefault(self._current_id, text)
                self._current_id = self._current_tag = None
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._current_id is not None and self._skip_depth == 0:
            self._parts.append(data)


def parse_help_file(path: Path) -> dict[str, str]:
    """Map paragraph id -> plain text for one help HTML file."""
    parser = _ParagraphParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.paragraphs


def canonical_language(language: str, available: tuple[str, ...] | list[str]) -> str:
    """Match a code case-insensitively (`zh-cn` -> `zh-CN`), or raise listing the known ones."""
    by_folded = {code.casefold(): code for code in available}
    code = by_folded.get(language.casefold())
    if code is None:
        raise DataError(
            f"Unknown language {language!r} for the LibreOffice corpus. "
            f"Available: {', '.join(sorted(available))}."
        )
    return code


@contextmanager
def _cache_lock(folder: Path) -> Iterator[None]:
    """Serialise downloads and parses between processes sharing the cache (POSIX flock)."""
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _package_name(code: str) -> str:
    return f"libreoffice-help-{code.lower()}"


def _download_and_extract(code: str, extract_root: Path) -> None:
    """`apt-get download` one help package and `dpkg-deb -x` it under `extract_root`."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(
                f"`{tool}` is not available, so the LibreOffice help for {code!r} cannot be "
                "fetched; extract `libreoffice-help-*` packages elsewhere and use the source "
                "'libreoffice:/path/to/usr/share/libreoffice/help'."
            )
    package = _package_name(code)
    with tempfile.TemporaryDirectory(prefix="muit-deb-") as tmp:
        log.info("downloading %s (apt-get download) ...", package)
        result = subprocess.run(
            ["apt-get", "download", "-q", package],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or not debs:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataError(
                f"`apt-get download {package}` failed ({detail[0]}); run `apt-get update` "
                "first, or use the source 'libreoffice:/path/to/usr/share/libreoffice/help'."
            )
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extract_root)], check=True)


def ensure_help_tree(codes: list[str]) -> Path:
    """Download and extract the help packages for `codes` (once); return the help folder."""
    root = cache_dir("corpora", "libreoffice")
    extract_root = root / "extracted"
    with _cache_lock(root):
        for code in codes:
            stamp = root / f"{_package_name(code)}.extracted"
            if not stamp.exists():
                _download_and_extract(code, extract_root)
                stamp.write_text("ok\n")
    return extract_root / HELP_SUBDIR


def _language_folder(help_dir: Path, code: str) -> Path:
    folder = help_dir / code
    if not (folder / "text").is_dir():
        raise DataError(
            f"The LibreOffice help folder {folder} is missing or has no text/ pages; "
            "point the source at an extracted usr/share/libreoffice/help folder."
        )
    return folder


def language_paragraphs(help_dir: Path, code: str, cache: Path | None) -> dict[str, str]:
    """All paragraphs of one language, keyed `relative/file.html#id`; cached as JSON."""
    cache_file = cache / f"paragraphs-v{PARSE_CACHE_VERSION}-{code}.json" if cache else None
    if cache_file is not None and cache_file.exists():
        loaded: dict[str, str] = json.loads(cache_file.read_text(encoding="utf-8"))
        return loaded
    folder = _language_folder(help_dir, code)
    paragraphs: dict[str, str] = {}
    for page in sorted((folder / "text").rglob("*.html")):
        relative = page.relative_to(folder).as_posix()
        for element_id, text in parse_help_file(page).items():
            paragraphs[f"{relative}#{element_id}"] = text
    if not paragraphs:
        raise DataError(f"No paragraphs found under {folder}/text; is it a LibreOffice help tree?")
    if cache_file is not None:
        atomic_write_text(cache_file, json.dumps(paragraphs, ensure_ascii=False))
    return paragraphs


def available_languages(help_dir: Path | None) -> tuple[str, ...]:
    """Languages a help folder has (or the Debian packages offer, for the default source)."""
    if help_dir is None:
        return LIBREOFFICE_LANGUAGES
    if not help_dir.is_dir():
        raise DataError(
            f"LibreOffice help folder {help_dir} does not exist; extract a libreoffice-help-* "
            "package with `dpkg-deb -x` and give its usr/share/libreoffice/help folder."
        )
    return tuple(
        sorted(
            p.name
            for p in help_dir.iterdir()
            if p.is_dir() and p.name != ENGLISH_FOLDER and (p / "text").is_dir()
        )
    )


def aligned_pairs(language: str, help_dir: Path | None = None) -> list[Pair]:
    """Every (en-US, language) paragraph pair that shares a file and an id, unfiltered.

    Args:
        language: a code such as `el` or `zh-CN` (case-insensitive).
        help_dir: an extracted `usr/share/libreoffice/help` folder; None fetches Debian's
            packages into the cache folder.

    Raises:
        DataError: unknown language, or the packages cannot be fetched or read.
    """
    code = canonical_language(language, available_languages(help_dir))
    if help_dir is None:
        help_dir = ensure_help_tree([ENGLISH_FOLDER, code])
        parse_cache: Path | None = cache_dir("corpora", "libreoffice", "parsed")
    else:
        parse_cache = None
    english = language_paragraphs(help_dir, ENGLISH_FOLDER, parse_cache)
    other = language_paragraphs(help_dir, code, parse_cache)
    return [Pair(en=english[key], text=other[key], key=key) for key in english.keys() & other]


def claims_source(source: str) -> bool:
    """Whether `source` names this corpus: `libreoffice` or `libreoffice:HELP_DIR`."""
    return source == LIBREOFFICE_SOURCE or source.startswith(LIBREOFFICE_SOURCE + ":")


def read_source(source: str, language: str) -> list[Pair]:
    """`aligned_pairs` for a source string: the folder after `libreoffice:`, if any."""
    help_dir = source.partition(":")[2] or None
    return aligned_pairs(language, Path(help_dir) if help_dir else None)


CORPUS = CorpusEntry(
    name=LIBREOFFICE_SOURCE,
    source_help="'libreoffice' (default), 'libreoffice:HELP_DIR'",
    claims=claims_source,
    read_pairs=read_source,
)
