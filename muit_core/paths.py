"""Where downloaded corpora and converted models are cached."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV_VAR = "MUIT_CACHE"


def cache_dir(*parts: str) -> Path:
    """The project's cache folder (created), or a sub-folder of it.

    `$MUIT_CACHE` when set, else `$XDG_CACHE_HOME/muit-planner`, else
    `~/.cache/muit-planner`. Corpora and converted models live here, never in the repository.
    """
    root_env = os.environ.get(CACHE_ENV_VAR)
    if root_env:
        root = Path(root_env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "muit-planner"
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
