"""Code backup: the project's files as ``code.zip``, paths relative to the project root.

Inside a git work tree the file list is git's own (``git ls-files --cached --others --exclude-standard``), so
nested ``.gitignore`` files, negations and ``.git/info/exclude`` behave exactly as in git; a tracked file that an
ignore rule lists (a ``.env`` committed before ``.gitignore`` named it) is left out too. Outside one, the
``.gitignore`` files found in the tree (and ``.git/info/exclude``, if any) are applied with pathspec. ``.git/`` is
never included, and files larger than the size cap are skipped with a warning.

Symlinks are never followed: one is archived as a link (its mode bits, and as content the path of its target
relative to the link's folder) when its target resolves inside the project to a file or folder that is backed up
itself, and skipped with a warning otherwise, so that a link can carry neither a file from outside the project
(``pw -> /etc/passwd``) nor an ignored one (``env_link -> .env``) into the zip.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024


def project_files(root: str | os.PathLike[str], *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Relative, '/'-separated paths of the files (and symlinks) under ``root`` that belong in a backup.

    ``exclude``: relative folders left out (the storage folder when results are kept inside the project).
    """
    files, links, _skipped = _entries(os.fspath(root), exclude)
    return sorted([*files, *links])


def _entries(root: str, exclude: tuple[str, ...]) -> tuple[list[str], dict[str, str], list[str]]:
    """The regular files, the symlinks to archive (path -> target relative to the link's folder) and the
    symlinks skipped (one warning line each)."""
    folders = tuple(p.strip("/") for p in exclude if p.strip("/"))
    names = _git_files(root, folders)
    if names is None:
        names = _gitignore_files(root, folders)
    prefixes = tuple(p + "/" for p in folders)
    real_root = os.path.realpath(root)
    files: list[str] = []
    candidates: list[str] = []
    skipped: list[str] = []
    real_folders: dict[str, bool] = {}  # folder -> no symlink on the way to it, once per folder
    for rel in sorted(names):
        if ".git" in rel.split("/") or rel.startswith(prefixes):
            continue
        path = os.path.join(root, rel)
        # git lists what its index holds: a tracked file below a folder since replaced by a symlink would be
        # read through that link, out of the project.
        folder = posixpath.dirname(rel)
        if folder not in real_folders:
            expected = os.path.normpath(os.path.join(real_root, folder))
            real_folders[folder] = os.path.realpath(os.path.dirname(path)) == expected
        if not real_folders[folder]:
            skipped.append(f"code backup skipped {rel}: it lies below a symlinked folder")
        elif os.path.islink(path):
            candidates.append(rel)
        elif os.path.isfile(path):
            files.append(rel)
    links = _allowed_links(root, real_root, candidates, files, skipped)
    return files, links, skipped


def _allowed_links(
    root: str, real_root: str, candidates: list[str], files: list[str], skipped: list[str]
) -> dict[str, str]:
    backed_up = set(files)
    folders = {posixpath.dirname(f) for f in files}
    for folder in list(folders):
        while folder:
            folder = posixpath.dirname(folder)
            folders.add(folder)
    links: dict[str, str] = {}
    for rel in candidates:
        target = os.path.relpath(os.path.realpath(os.path.join(root, rel)), real_root).replace(os.sep, "/")
        target = "" if target == "." else target
        if target == ".." or target.startswith("../") or os.path.isabs(target):
            skipped.append(f"code backup skipped the symlink {rel}: its target is outside the project")
        elif target not in backed_up and target not in folders:
            skipped.append(f"code backup skipped the symlink {rel}: its target is ignored or not backed up")
        else:
            links[rel] = posixpath.relpath(target or ".", posixpath.dirname(rel) or ".")
    return links


def _git_files(root: str, exclude: tuple[str, ...] = ()) -> list[str] | None:
    # Excluded folders (results kept in the project) are pruned by git itself: they may hold many files.
    pathspecs = ["--", ".", *(f":(exclude){folder}" for folder in exclude)] if exclude else []
    names = _ls_files(root, ["--cached", "--others", "--exclude-standard", *pathspecs])
    if names is None:
        return None  # no git on this machine, or not a git work tree
    # Git keeps tracking a file that was committed before an ignore rule listed it (or added with -f): a
    # committed .env is still a secret the .gitignore says must stay out, so ignore rules win over tracking.
    ignored = set(_ls_files(root, ["--cached", "--ignored", "--exclude-standard", *pathspecs]) or ())
    # Empty when the project lies in a folder its enclosing repository ignores: use the .gitignore rules then.
    return [n for n in dict.fromkeys(names) if n not in ignored] or None


def _ls_files(root: str, args: list[str]) -> list[str] | None:
    import subprocess

    try:
        done = subprocess.run(["git", "ls-files", "-z", *args], cwd=root, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]


def git_revision(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The git commit of the project (``{'commit', 'branch', 'dirty'}``); {} outside a git work tree.

    ``dirty`` means tracked files differ from the commit; untracked files are in ``code.zip`` anyway.
    """
    import subprocess

    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=os.fspath(root),
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if done.returncode != 0:
        return {}
    commit = branch = None
    dirty = False
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid ") :].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head ") :].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return {"commit": commit, "branch": branch, "dirty": dirty}


def _gitignore_files(root: str, exclude: tuple[str, ...] = ()) -> list[str]:
    from pathspec import GitIgnoreSpec

    out: list[str] = []
    skip = set(exclude)

    def ignored(specs: list[tuple[str, Any]], rel: str, is_dir: bool) -> bool:
        # The deepest .gitignore with a matching pattern decides, as in git.
        for base, spec in reversed(specs):
            sub = rel[len(base) + 1 :] if base else rel
            result = spec.check_file(sub + "/" if is_dir else sub)
            if result.include is not None:
                return bool(result.include)
        return False

    def visit(rel_dir: str, specs: list[tuple[str, Any]]) -> None:
        folder = os.path.join(root, rel_dir) if rel_dir else root
        try:
            with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
                specs = [*specs, (rel_dir, GitIgnoreSpec.from_lines(f.read().splitlines()))]
        except OSError:
            pass
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name == ".git":
                continue
            rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
            if rel in skip:
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if ignored(specs, rel, is_dir):
                continue  # git never looks inside an ignored folder, so negations below it do not count
            if is_dir:
                visit(rel, specs)
            elif entry.is_symlink() or entry.is_file():
                out.append(rel)  # a symlink is judged by its target later, never followed here

    # A .git/ that git cannot use here (a repository owned by another user, no git installed) still has its
    # local rules: below every .gitignore, as in git.
    root_specs: list[tuple[str, Any]] = []
    try:
        with open(os.path.join(root, ".git", "info", "exclude"), encoding="utf-8", errors="replace") as f:
            root_specs.append(("", GitIgnoreSpec.from_lines(f.read().splitlines())))
    except OSError:
        pass
    visit("", root_specs)
    return out


def build_zip(
    root: str | os.PathLike[str],
    *,
    max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    exclude: tuple[str, ...] = (),
) -> tuple[bytes, list[str]]:
    """The zip archive's bytes and the relative paths archived."""
    import io
    import warnings
    import zipfile

    root = os.fspath(root)
    files, links, skipped_links = _entries(root, exclude)
    for line in skipped_links:
        warnings.warn(line, stacklevel=3)
    buffer = io.BytesIO()
    archived: list[str] = []
    skipped: list[str] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted([*files, *links]):
            if rel in links:
                archive.writestr(_link_info(rel, os.path.join(root, rel)), links[rel])
                archived.append(rel)
                continue
            path = os.path.join(root, rel)
            try:
                size = os.path.getsize(path)
                if max_file_size is not None and size > max_file_size:
                    skipped.append(f"{rel} ({size:,} bytes)")
                    continue
                archive.write(path, arcname=rel)
            except OSError as exc:
                skipped.append(f"{rel} ({exc.strerror or exc})")
                continue
            archived.append(rel)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        limit = f"{max_file_size:,} bytes" if max_file_size is not None else "no limit"
        warnings.warn(
            f"code backup skipped {len(skipped)} file(s) (size limit {limit}): {shown}", stacklevel=3
        )
    return buffer.getvalue(), archived


def _link_info(rel: str, path: str) -> Any:
    """A zip entry that unzip restores as a symlink: the Unix mode bits of a link."""
    import stat
    import time
    import zipfile

    try:
        stamp = max(os.lstat(path).st_mtime, 315532800)  # zip cannot hold times before 1980
    except OSError:
        stamp = 315532800
    info = zipfile.ZipInfo(rel, date_time=time.localtime(stamp)[:6])
    info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info
