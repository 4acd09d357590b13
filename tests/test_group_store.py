"""A results store that two Unix users of one group share (issue #22 item 3): with
`group_writable` (umask 002) and `harsanyi store share` (setgid, group-writable directories)
each can read and extend what the other wrote; with a plain umask 022 the second cannot, and
`store verify --shared` names what blocks them.  Needs root (users are made with useradd)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import harsanyi.io
from harsanyi.sharing import share_store, sharing_problems

GROUP = "harsanyilab"
USERS = ("harsanyia", "harsanyib")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="needs root and useradd to make two users of one group",
)

# Runs as root until every module is loaded (the interpreter lives under /root), then as the
# user; writes one file under the store with the umask given, then reads another back.
AS_USER = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    from pathlib import Path

    # harsanyi.io alone, without the package (whose import loads torch: seconds per user)
    spec = importlib.util.spec_from_file_location("harsanyi_io", sys.argv[5])
    io = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(io)
    write_json = io.write_json

    user, umask, write, read = sys.argv[1], int(sys.argv[2], 8), sys.argv[3], sys.argv[4]
    import grp, pwd
    entry = pwd.getpwnam(user)
    os.setgroups([g.gr_gid for g in grp.getgrall() if user in g.gr_mem])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.umask(umask)
    try:
        write_json({"by": user}, write)
    except PermissionError as error:
        print("cannot write:", error)
        sys.exit(3)
    if read != "-":
        try:
            print(json.loads(Path(read).read_text())["by"])
        except PermissionError as error:
            print("cannot read:", error)
            sys.exit(4)
    """
)


@pytest.fixture(scope="module")
def lab():
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode:
        subprocess.run(["groupadd", GROUP], check=True)
    for user in USERS:
        if subprocess.run(["id", user], capture_output=True).returncode:
            subprocess.run(
                ["useradd", "-M", "-N", "-G", GROUP, "-s", "/usr/sbin/nologin", user], check=True
            )
    return grp.getgrnam(GROUP).gr_gid


@pytest.fixture
def store(lab):
    base = Path(tempfile.mkdtemp(prefix="harsanyi-shared-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "store"
    root.mkdir()
    os.chown(root, 0, lab)
    root.chmod(0o775)
    yield root
    shutil.rmtree(base)


def as_user(user: str, umask: str, write: Path, read: Path | str = "-"):
    return subprocess.run(
        [sys.executable, "-c", AS_USER, user, umask, str(write), str(read), harsanyi.io.__file__],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_members_extend_each_others_runs_in_a_shared_store(store):
    share_store(store, GROUP)
    first = store / "digits" / "runs" / "r-a" / "run.json"
    done = as_user(USERS[0], "002", first)
    assert done.returncode == 0, done.stdout + done.stderr
    second = first.parent / "interactions" / "x-1" / "epoch_0001.json"
    done = as_user(USERS[1], "002", second, first)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == USERS[0]  # b read a's file
    assert as_user(USERS[0], "002", first.parent / "more.json", second).returncode == 0
    assert sharing_problems(store) == []
    for path in (first.parent, second.parent):
        assert path.stat().st_gid == grp.getgrnam(GROUP).gr_gid  # setgid: the store's group
        assert pwd.getpwuid(path.stat().st_uid).pw_name in USERS


def test_a_private_umask_locks_the_second_member_out_and_verify_names_it(store):
    share_store(store, GROUP)
    first = store / "digits" / "runs" / "r-a" / "run.json"
    assert as_user(USERS[0], "022", first).returncode == 0
    second = first.parent / "interactions" / "epoch_0001.json"
    done = as_user(USERS[1], "002", second, first)
    assert done.returncode == 3 and "cannot write" in done.stdout
    problems = sharing_problems(store)
    assert any(p.startswith(f"{first.parent}: ") and "g+rwx" in p for p in problems), problems
    share_store(store, GROUP)  # as root, as the README says an admin would
    assert sharing_problems(store) == []
    assert as_user(USERS[1], "002", second, first).returncode == 0


def test_share_never_follows_a_link_out_of_the_store(store, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    before = (outside / "keep.txt").stat()
    (store / "linked").symlink_to(outside)
    report = share_store(store, GROUP)
    assert report.links_skipped == 1
    after = (outside / "keep.txt").stat()
    assert (after.st_mode, after.st_gid) == (before.st_mode, before.st_gid)


def test_the_store_commands_share_and_verify(store, capsys):
    from harsanyi.cli import main

    private = store / "digits"
    private.mkdir()
    private.chmod(0o755)
    assert main(["store", "verify", str(store), "--shared"]) == 1
    out = capsys.readouterr().out
    assert f"{private}: " in out and "no setgid bit" in out
    assert main(["store", "share", str(store), "--group", GROUP]) == 0
    assert "shared with the group" in capsys.readouterr().out
    assert main(["store", "verify", str(store), "--shared"]) == 0
    with pytest.raises(ValueError, match="no Unix group named 'no-such-lab'"):
        share_store(store, "no-such-lab")


def test_jobs_apply_the_umask_the_workflow_asks_for(monkeypatch):
    from harsanyi.sharing import UMASK_VARIABLE, apply_group_umask_if_asked

    previous = os.umask(0o022)
    try:
        monkeypatch.delenv(UMASK_VARIABLE, raising=False)
        assert not apply_group_umask_if_asked() and os.umask(0o022) == 0o022
        monkeypatch.setenv(UMASK_VARIABLE, "1")
        assert apply_group_umask_if_asked() and os.umask(0o022) == 0o002
    finally:
        os.umask(previous)
