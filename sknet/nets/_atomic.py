"""Writing a file atomically: a temporary file next to it, synced, then renamed onto it."""

import contextlib
import errno
import os
import stat
import tempfile


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it onto ``path``.

    A rename within one folder is atomic, so a crash or a kill at any moment
    leaves either the old file or the new one, never a partial file (at worst a
    hidden ``.NAME.*.tmp`` file next to it).
    """
    path = os.path.realpath(os.fspath(path))  # like open(), write through a symlink to its target
    folder, name = os.path.split(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Cannot save the model: the path is a folder", path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "Cannot save the model: the folder does not exist", folder)
    mode = _new_file_mode(path)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename can be
        os.chmod(temporary, mode)  # mkstemp creates the file readable by its owner only
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _new_file_mode(path):
    """The permission bits ``open(path, "w")`` would leave: the old file's, or 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask():
    # Linux shows the umask in /proc; os.umask can only read it by setting it, and a
    # thread creating a file in between would get the temporary value.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
    """Make the rename durable (POSIX); where a folder cannot be opened or synced, skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
