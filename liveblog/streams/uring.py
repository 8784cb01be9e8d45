"""The same bytes to many sockets in one system call: Linux's io_uring, through ctypes.

A fan-out pass writes one frame to every viewer of a stream. Written with `os.write`, that is a
system call per viewer, with the Python of a call around each one. `SendRing.send` instead puts
one submission entry per socket (IORING_OP_SEND with MSG_DONTWAIT) in a ring shared with the
kernel and submits them all with one `io_uring_enter`, which waits for their completions.

Only C-speed operations touch the per-socket data: the entries' fields that change (descriptor,
buffer address, length) are written as strided slices of the shared memory, and the results
are compared with what success looks like as one byte string. Python runs per socket only when
a send did not take every byte, which the caller then handles as a short `write` (the rest goes
behind, through the transport).

MSG_DONTWAIT makes every send complete at once (`-EAGAIN` when the socket's buffer is full);
none is ever left in the kernel waiting for room, so when `send` returns the kernel has finished
with the buffer. The wait for completions is bounded all the same (`WAIT_SECONDS`): past it, or
on any error of the ring itself, the ring is given up for good (`broken`), the sockets whose
outcome is unknown are reported `LOST` (the caller aborts them: what reached them is unknown),
their buffer is kept alive for the kernel, and the caller writes with `os.write` from then on.

Opened only where the kernel allows it (Linux 5.11 or later for the bounded wait; not under a
seccomp profile that forbids io_uring, as Docker's default does; not with
`kernel.io_uring_disabled`): `SendRing.open` returns None and says why, and fan-out writes one
system call per viewer as before. docs/architecture.md, "Fan-out writes".
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import struct
import sys
import time
from array import array
from collections.abc import Sequence

log = logging.getLogger(__name__)

# System call numbers: the same on every Linux architecture since 5.1 (the unified table).
_SYS_SETUP, _SYS_ENTER = 425, 426
_OFF_SQ_RING, _OFF_SQES = 0, 0x10000000
_FEAT_SINGLE_MMAP = 1 << 0
_FEAT_NODROP = 1 << 1
_FEAT_EXT_ARG = 1 << 8
_ENTER_GETEVENTS = 1 << 0
_ENTER_EXT_ARG = 1 << 3
_OP_SEND = 26
_MSG_DONTWAIT, _MSG_NOSIGNAL = 0x40, 0x4000
_SQE = 64  # bytes per submission entry
_CQE = 16  # bytes per completion entry

ENTRIES = 4096  # submission entries: a pass to more sockets is submitted in chunks of this many
WAIT_SECONDS = 1.0  # the longest `send` waits for completions before giving the ring up
LOST = -(10**6)  # a socket's result when the ring broke before its completion came


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_int64)]


class _GeteventsArg(ctypes.Structure):
    _fields_ = [
        ("sigmask", ctypes.c_uint64),
        ("sigmask_sz", ctypes.c_uint32),
        ("min_wait_usec", ctypes.c_uint32),
        ("ts", ctypes.c_uint64),
    ]


class SendRing:
    """One io_uring for fan-out sends; use from the event loop's thread only."""

    def __init__(self, fd: int, params: bytes, libc: ctypes.CDLL) -> None:
        self.fd = fd
        self._syscall = libc.syscall
        sq_entries, cq_entries = struct.unpack_from("2I", params, 0)
        # Offsets into the shared memory (io_sqring_offsets, io_cqring_offsets).
        sq_head, sq_tail, sq_mask, _, _, _, sq_array = struct.unpack_from("7I", params, 40)
        cq_head, cq_tail, cq_mask, _, _, cqes = struct.unpack_from("6I", params, 80)
        self.entries = sq_entries
        self.cq_entries = cq_entries
        size = max(sq_array + sq_entries * 4, cqes + cq_entries * _CQE)
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        self._ring = mmap.mmap(fd, size, flags, prot, offset=_OFF_SQ_RING)
        self._sqes = mmap.mmap(fd, sq_entries * _SQE, flags, prot, offset=_OFF_SQES)
        ring = memoryview(self._ring)
        self._words = ring.cast("I")  # the heads and tails, by their offset // 4
        self._sq_head, self._sq_tail = sq_head // 4, sq_tail // 4
        self._cq_head, self._cq_tail = cq_head // 4, cq_tail // 4
        self._sq_mask, self._cq_mask = self._words[sq_mask // 4], self._words[cq_mask // 4]
        # Ring position i always names entry i: only the tail moves.
        ring[sq_array : sq_array + sq_entries * 4].cast("I")[:] = array("I", range(sq_entries))
        self._cq_ints = ring[cqes : cqes + cq_entries * _CQE].cast("i")
        self._cq_longs = ring[cqes : cqes + cq_entries * _CQE].cast("Q")
        # What stays the same in every entry is written once: the operation, its flags, and the
        # entry's own index as user_data (to match a completion to its socket if they differ).
        entry = bytearray(sq_entries * _SQE)
        for i in range(sq_entries):
            struct.pack_into(
                "BBHiQQIIQ", entry, i * _SQE, _OP_SEND, 0, 0, -1, 0, 0, 0, _MSG_DONTWAIT | _MSG_NOSIGNAL, i
            )
        sqes = memoryview(self._sqes)
        sqes[:] = entry
        self._sq_ints = sqes.cast("i")
        self._sq_longs = sqes.cast("Q")
        self._timeout = _Timespec(int(WAIT_SECONDS), int((WAIT_SECONDS % 1) * 1e9))
        self._arg = _GeteventsArg(0, 0, 0, ctypes.addressof(self._timeout))
        self._arg_ref = ctypes.byref(self._arg)
        self._arg_size = ctypes.sizeof(self._arg)
        self.broken = False
        self.pinned: list[bytes] = []  # buffers the kernel may still read (only once broken)
        self.sends = 0  # sockets written through the ring, for tests and the benchmark
        self.calls = 0  # io_uring_enter calls that submitted them

    @classmethod
    def open(cls, entries: int = ENTRIES) -> SendRing | None:
        """A ring, or None (logged, with the reason) where this kernel or sandbox has none."""
        if not sys.platform.startswith("linux"):
            log.info("fan-out: one write per viewer (io_uring is Linux's)")
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            params = ctypes.create_string_buffer(120)
            fd = libc.syscall(_SYS_SETUP, ctypes.c_uint(entries), params)
            if fd < 0:
                code = ctypes.get_errno()
                log.info("fan-out: one write per viewer (io_uring_setup: %s)", os.strerror(code))
                return None
            features = struct.unpack_from("I", params.raw, 20)[0]
            wanted = _FEAT_SINGLE_MMAP | _FEAT_NODROP | _FEAT_EXT_ARG
            if features & wanted != wanted:
                os.close(fd)
                log.info("fan-out: one write per viewer (this kernel's io_uring is older than 5.11)")
                return None
            try:
                ring = cls(fd, params.raw, libc)
            except BaseException:
                os.close(fd)
                raise
        except (OSError, AttributeError, ValueError) as e:
            log.info("fan-out: one write per viewer (io_uring: %s)", e)
            return None
        log.info("fan-out: io_uring, %d sends per system call at most", ring.entries)
        return ring

    def close(self) -> None:
        for view in (self._words, self._cq_ints, self._cq_longs, self._sq_ints, self._sq_longs):
            view.release()
        self._ring.close()
        self._sqes.close()
        os.close(self.fd)
        self.broken = True

    def send(self, fds: Sequence[int], data: bytes) -> list[int] | None:
        """`data` to each socket in `fds`: None if every one took all of it, else each one's
        result in `fds`' order (bytes taken, -errno, or LOST)."""
        if self.broken:
            raise RuntimeError("the send ring is closed")
        if not fds:
            return None
        addr = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        count = len(fds)
        results: list[int] | None = None
        done = 0
        while done < count:
            chunk = fds[done : done + self.entries]
            out = self._submit(chunk, addr, data)
            if out is not None:
                if results is None:
                    results = [len(data)] * count
                results[done : done + len(chunk)] = out
                if self.broken:  # nothing more goes through this ring; the rest were not sent
                    results[done + len(chunk) :] = [0] * (count - done - len(chunk))
                    return results
            done += len(chunk)
        return results

    def _submit(self, fds: Sequence[int], addr: int, data: bytes) -> list[int] | None:
        n = len(fds)
        words = self._words
        tail = words[self._sq_tail]
        start = tail & self._sq_mask
        # The entries from `start`, wrapping once past the end of the ring.
        first = min(n, self.entries - start)
        fd_array = fds if isinstance(fds, array) else array("i", fds)
        for at, lo, hi in ((start, 0, first), (0, first, n)):
            if hi <= lo:
                continue
            end = at + hi - lo
            self._sq_ints[at * 16 + 1 : end * 16 : 16] = fd_array[lo:hi]  # fd, at byte 4
            self._sq_longs[at * 8 + 2 : end * 8 : 8] = array("Q", (addr,)) * (hi - lo)  # addr, at 16
            self._sq_ints[at * 16 + 6 : end * 16 : 16] = array("i", (len(data),)) * (hi - lo)  # len, at 24
        words[self._sq_tail] = (tail + n) & 0xFFFFFFFF
        self.calls += 1
        self.sends += n
        got, trouble = self._wait(n)
        head = words[self._cq_head]
        h = head & self._cq_mask
        # Each completion's res (the int at byte 8 of its 16), in the ring's order.
        if h + got <= self.cq_entries:
            res = self._cq_ints[h * 4 + 2 : (h + got) * 4 : 4].tobytes()
        else:
            res = (
                self._cq_ints[h * 4 + 2 :: 4].tobytes()
                + self._cq_ints[2 : (h + got - self.cq_entries) * 4 : 4].tobytes()
            )
        if got == n and res == struct.pack("i", len(data)) * n:
            words[self._cq_head] = (head + got) & 0xFFFFFFFF
            return None
        results = [LOST] * n
        for k in range(got):
            slot = (h + k) & self._cq_mask
            index = (self._cq_longs[slot * 2] - start) % self.entries
            if index < n:
                results[index] = self._cq_ints[slot * 4 + 2]
        words[self._cq_head] = (head + got) & 0xFFFFFFFF
        if got < n:
            self._give_up(data, trouble or f"{n - got} of {n} sends did not complete within {WAIT_SECONDS} s")
        return results

    def _wait(self, n: int) -> tuple[int, str]:
        """Submit `n` entries and wait (bounded) for their completions: how many came, and what
        went wrong if not all of them did."""
        words = self._words
        to_submit = n
        deadline = time.monotonic() + WAIT_SECONDS  # signals may interrupt the wait, not extend it
        while True:
            r = self._syscall(
                _SYS_ENTER,
                self.fd,
                ctypes.c_uint(to_submit),
                ctypes.c_uint(n),
                ctypes.c_uint(_ENTER_GETEVENTS | _ENTER_EXT_ARG),
                self._arg_ref,
                ctypes.c_size_t(self._arg_size),
            )
            code = ctypes.get_errno() if r < 0 else 0
            got = (words[self._cq_tail] - words[self._cq_head]) & 0xFFFFFFFF
            submitted = (words[self._sq_tail] - words[self._sq_head]) & 0xFFFFFFFF
            to_submit = submitted  # what the kernel has not consumed yet (0 once all are in)
            if got >= n:
                return got, ""
            if r < 0 and code == errno.EINTR and time.monotonic() < deadline:
                continue  # a signal: the entries consumed so far still complete; wait on
            return got, f"io_uring_enter: {os.strerror(code)}" if r < 0 and code != errno.ETIME else ""

    def _give_up(self, data: bytes, why: str) -> None:
        if not self.broken:
            log.error("fan-out: io_uring given up (%s); one write per viewer from now on", why)
        self.broken = True
        self.pinned.append(data)  # the kernel may still read it: never free it
