"""Write files so that a reader never sees half of one: write a temporary file, then rename."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from muit_core.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _write_durably(fd: int, data: bytes) -> None:
    """Write `data` to the new file `fd` (closing it), readable as the umask allows, fsynced."""
    # mkstemp creates 0600; results are meant to be shared like any file the user writes.
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically (same-folder temporary file, fsync, rename).

    Creates the parent folder. Safe against crashes: `path` holds either its old content or
    the new one, never a mix. Returns the path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        _write_durably(fd, data)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; see `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding))


def figure_png(figure: Figure, dpi: float | None = None) -> bytes:
    """A matplotlib `figure` rendered as PNG bytes; `dpi=None` keeps the figure's own."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi if dpi is not None else "figure")
    return buffer.getvalue()


def _staging_dir(out_dir: Path, option: str) -> Path:
    OutputSet.check(out_dir, option)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    except OSError as err:
        raise ConfigError(
            f"Cannot write to {option} {str(out_dir)!r} ({err.strerror}); give a folder you "
            "can write to."
        ) from None


class OutputSet:
    """Write a run's outputs all or none: stage every file, then put them in place together.

    Use as a context manager. Files written through it go to a hidden staging folder inside
    `out_dir`; when the block ends without an exception, each is renamed over its target (a
    rename in the same file system, so a reader sees the old file or the new one, never half of
    one); when it raises, the staged files are deleted and every earlier output is untouched.

    Creating it checks that `out_dir` is (or can be made) a writable folder, so a bad `--out`
    fails before any work is done.

    Raises:
        ConfigError: `out_dir` is a file, or cannot be created or written.
    """

    def __init__(self, out_dir: str | os.PathLike[str], option: str = "--out") -> None:
        self.out_dir = Path(out_dir)
        self._option = option
        self._staging = _staging_dir(self.out_dir, option)
        self._staged: list[tuple[Path, Path]] = []

    @staticmethod
    def check(out_dir: str | os.PathLike[str], option: str = "--out") -> None:
        """Raise `ConfigError` now if `out_dir` could not take a run's outputs; creates nothing.

        `out_dir` must be a folder, or not exist below a folder this process can write to.
        """
        target = Path(out_dir)
        if target.exists() and not target.is_dir():
            raise ConfigError(
                f"{option} {str(target)!r} is a file, not a folder; give a folder path."
            )
        existing = next(p for p in (target, *target.absolute().parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(
                f"Cannot write to {option} {str(target)!r} ({str(existing)!r} is not a folder "
                "you can write to); give another folder."
            )

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Stage `data` for `out_dir / name`; returns the final path."""
        staged = self._staging / f"{len(self._staged)}.part"
        _write_durably(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), data)
        self._staged.append((staged, self.out_dir / name))
        return self.out_dir / name

    def write_text(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        """Stage `text` for `out_dir / name`; returns the final path."""
        return self.write_bytes(name, text.encode(encoding))

    def write_png(self, name: str, figure: Figure, dpi: float | None = None) -> Path:
        """Stage a matplotlib figure as a PNG for `out_dir / name`; returns the final path."""
        return self.write_bytes(name, figure_png(figure, dpi))

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                # A folder where a file goes would stop the renames half way: refuse first.
                for _, target in self._staged:
                    if target.is_dir():
                        raise ConfigError(
                            f"{self._option} {str(self.out_dir)!r} holds a folder "
                            f"{str(target.relative_to(self.out_dir))!r} where a file goes; move "
                            f"it away or give another {self._option}."
                        )
                for staged, target in self._staged:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, target)
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
