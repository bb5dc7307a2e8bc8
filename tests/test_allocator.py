"""tg.keep_freed_memory: an opt-in glibc setting."""

import ctypes.util
import platform

import pytest

import tinygraph as tg

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="keep_freed_memory is a glibc setting")
def test_keep_freed_memory_is_accepted_by_glibc():
    assert ctypes.util.find_library("c")
    assert tg.keep_freed_memory() is True
    assert tg.keep_freed_memory(64 * 1024 * 1024) is True


@pytest.mark.parametrize("bad", [-1, 1.5, "1GB", None])
def test_keep_freed_memory_rejects_a_bad_size(bad):
    with pytest.raises(ValueError, match="keep_bytes"):
        tg.keep_freed_memory(bad)
