"""A results store that a Unix group shares: every member can read all of it and add to any
directory of it, whoever created the directory.

Two things make it so, and `share_store` (the `harsanyi store share` command) sets both on an
existing store: directories carry the setgid bit (what is created in them takes the
directory's group, not the creator's primary group) and are group-writable; files are
group-readable and -writable.  New files and directories stay so when every writer's umask
leaves the group bits alone: the study config's `group_writable: true` sets umask 002 in the
workflow and in every job it starts (`apply_group_umask`, read from HARSANYI_GROUP_UMASK by
`harsanyi.jobs.setup_job`).  `sharing_problems` lists what another member could not read or
extend (`harsanyi store verify --shared`).  Links are never followed.
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

GROUP_UMASK = 0o002
# Set by the workflow when the config asks for a group-writable store; every job applies it.
UMASK_VARIABLE = "HARSANYI_GROUP_UMASK"


def apply_group_umask() -> None:
    """umask 002 for this process (and what it starts): new files group-writable."""
    os.umask(GROUP_UMASK)
    os.environ[UMASK_VARIABLE] = "1"


def apply_group_umask_if_asked() -> bool:
    """`apply_group_umask` where the workflow asked for it (HARSANYI_GROUP_UMASK=1)."""
    if os.environ.get(UMASK_VARIABLE) == "1":
        os.umask(GROUP_UMASK)
        return True
    return False


@dataclass
class ShareReport:
    directories: int = 0
    files: int = 0
    changed: int = 0
    links_skipped: int = 0


def _walk(root: Path):
    """(path, lstat) of root and everything below it, links included but never followed."""
    yield root, root.lstat()
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        for name in sorted(subdirectories) + sorted(names):
            path = Path(directory) / name
            yield path, path.lstat()


def _group_id(group: str | int | None, root: Path) -> int:
    if group is None:
        return root.stat().st_gid
    try:
        return grp.getgrnam(group).gr_gid if isinstance(group, str) else int(group)
    except KeyError:
        raise ValueError(f"no Unix group named {group!r}") from None


def share_store(root: str | os.PathLike[str], group: str | int | None = None) -> ShareReport:
    """Make the store at `root` shareable by `group` (default: the root directory's group):
    every directory group-owned, setgid and group-writable; every file group-owned and
    group-readable and -writable (executable bits copied to the group).  Links are neither
    followed nor changed.  Returns counts; raises naming the path it cannot change."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results root")
    gid = _group_id(group, root)
    report = ShareReport()
    for path, info in _walk(root):
        if stat.S_ISLNK(info.st_mode):
            report.links_skipped += 1
            continue
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            report.directories += 1
            wanted = mode | stat.S_IRGRP | stat.S_IWGRP | stat.S_IXGRP | stat.S_ISGID
        elif stat.S_ISREG(info.st_mode):
            report.files += 1
            wanted = mode | stat.S_IRGRP | stat.S_IWGRP
            if mode & stat.S_IXUSR:
                wanted |= stat.S_IXGRP
        else:
            continue
        try:
            if info.st_gid != gid:
                os.chown(path, -1, gid, follow_symlinks=False)
                report.changed += 1
            if wanted != mode:
                os.chmod(path, wanted)
                report.changed += 1
        except PermissionError as error:
            raise PermissionError(
                f"{path}: cannot give group {gid} access ({error.strerror}); its owner "
                f"(uid {info.st_uid}) or root must run `harsanyi store share`"
            ) from None
    return report


def sharing_problems(root: str | os.PathLike[str]) -> list[str]:
    """What a member of the store's group (the root directory's group) could not read or
    extend: directories not of that group, not setgid or not group-writable; files not of that
    group or not group-readable; one line per path."""
    root = Path(root)
    gid = root.stat().st_gid
    try:
        name = grp.getgrgid(gid).gr_name
    except KeyError:
        name = str(gid)
    problems = []
    for path, info in _walk(root):
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        missing = []
        if info.st_gid != gid:
            missing.append(f"group is {info.st_gid}, not the store's {name}")
        if stat.S_ISDIR(info.st_mode):
            if mode & (stat.S_IRGRP | stat.S_IWGRP | stat.S_IXGRP) != 0o070:
                missing.append("not group-readable, -writable and -searchable (g+rwx)")
            if not mode & stat.S_ISGID:
                missing.append("no setgid bit (new files would take their creator's group)")
        elif stat.S_ISREG(info.st_mode) and not mode & stat.S_IRGRP:
            missing.append("not group-readable (g+r)")
        if missing:
            problems.append(f"{path}: {'; '.join(missing)}")
    if problems:
        problems.append(
            f"{root}: {len(problems)} path(s) another member of group {name} could not read or "
            "extend; `harsanyi store share` fixes them, `group_writable: true` keeps new ones so"
        )
    return problems
