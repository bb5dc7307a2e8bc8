"""Running a student's code where it cannot hurt the grader, and reporting what it did.

The student's function runs in a child process forked from the caller: for
`check()` (so a function defined in a notebook cell needs no pickling) and for
a file given to the CLI (which the child loads; numpy and tinygraph are already
imported, so a child starts in milliseconds). Without fork, a function runs in
a thread and a file in a fresh `python -m tinygraph.exercises._worker`. The
child has a memory limit, its own process group, and nothing of the caller to
change: `os._exit`, `sys.exit`, endless loops with bare `except:`, monkeypatched
numpy, megabytes of prints and nested `check()` calls all end with the child,
which the caller kills when a call runs out of time.

Child and caller speak over a pipe in length-prefixed pickles:
("ready",) after start-up, ("loaded",) or ("load_error", kind, details) for a
file, ("printed", Printed) now and then, ("noticed", what) when the function
calls a guarded function (a shortcut), ("call", i, Outcome) after each call.
The child only runs the calls and sends back what they returned, as plain
arrays: the caller, whose numpy and tinygraph the student never touched,
judges them.
"""

from __future__ import annotations

import ctypes
import io
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Node

__all__ = ["Outcome", "Returned", "Printed", "Run", "start_function", "start_file", "wait_any",
           "run_in_thread", "inside_sandbox",
           "MEMORY_LIMIT", "STARTUP_TIME"]

MEMORY_LIMIT = 1 << 30  # bytes of address space a child may add to what it uses at the start
STARTUP_TIME = 60.0  # seconds a fresh worker may take to start Python and import numpy on a busy machine
HEAD_LINES, HEAD_CHARS = 20, 2000  # how much of what the student printed is kept

_inside = False  # True in a child: a check() called by the student's function must not start another


def inside_sandbox() -> bool:
    """True while running a student's code in a child (nested `check()` calls refuse to run)."""
    return _inside


# -- what a call did, in a form that crosses the pipe ----------------------------------------------


@dataclass
class Returned:
    """A returned value, reduced to what the feedback needs: arrays stay arrays, the rest is described.

    `kind` is "array" (`array` holds it; `type_name` is what it was: ndarray, list, float...),
    "sequence" (a tuple or list of outputs; `items` holds one Returned each), "node" (a
    tinygraph Node), or "other" (`note` says why it is not numbers).
    """

    kind: str
    type_name: str
    array: np.ndarray | None = None
    items: list = field(default_factory=list)
    note: str = ""


def portable(value: Any, depth: int = 0) -> Returned:
    """`value` as a Returned; never raises, whatever the object does when read."""
    type_name = type(value).__name__
    if isinstance(value, Node):
        return Returned("node", type_name)
    if isinstance(value, (tuple, list)) and depth == 0 and not _all_numbers(value):
        return Returned("sequence", type_name, items=[portable(v, 1) for v in value[:8]], note=str(len(value)))
    if value is None or isinstance(value, (str, bytes, dict)):
        return Returned("other", type_name)
    if isinstance(value, np.ndarray):
        what = f"an ndarray of dtype {value.dtype}"
    else:
        what = type_name
    try:
        arr = np.array(value)
    except BaseException:  # noqa: B036 - whatever reading the object does is feedback
        return Returned("other", type_name, note=f"{what}, which is not an array of numbers")
    if arr.dtype.kind not in "biufc":
        return Returned("other", type_name, note=f"{what}, which is not an array of numbers")
    return Returned("array", type_name, array=arr)


def _all_numbers(value: Any) -> bool:
    return len(value) > 0 and all(isinstance(v, (int, float, np.integer, np.floating)) for v in value)


@dataclass
class Printed:
    """What the student's code printed: the first lines, and how much in all."""

    head: str = ""
    lines: int = 0
    chars: int = 0


@dataclass
class Outcome:
    """One call of the student's function.

    `ended` is None when the call returned or raised; "timeout" when it ran out of
    time; otherwise how the process ended ("exit": the process ended in the call).
    """

    value: Returned | None = None
    error: str | None = None
    error_type: str = ""
    ended: str | None = None
    exit_detail: str = ""
    changed: list = field(default_factory=list)  # inputs the call changed in place
    shortcuts: list = field(default_factory=list)  # tinygraph functions it called that do the work for it
    seconds: float = 0.0


@dataclass
class Run:
    """Everything a child reported: a load problem (files only), one Outcome per call made, the prints."""

    problem: tuple | None = None  # (kind, details) when the file could not be loaded
    outcomes: list = field(default_factory=list)
    printed: Printed = field(default_factory=Printed)


# -- the child's side ----------------------------------------------------------------------------


class _Channel:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, *message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(struct.pack("!Q", len(data)) + data)
        while view:
            view = view[os.write(self.fd, view):]


class _Capture(io.TextIOBase):
    """sys.stdout and sys.stderr of the child: keeps the first lines, counts the rest, reports now and then."""

    def __init__(self, channel: _Channel) -> None:
        self.printed = Printed()
        self.channel = channel
        self.reported = 0.0

    def writable(self) -> bool:
        return True

    def write(self, text: Any) -> int:
        text = str(text)
        p = self.printed
        p.chars += len(text)
        p.lines += text.count("\n")
        if len(p.head) < HEAD_CHARS and p.head.count("\n") < HEAD_LINES:
            p.head = (p.head + text)[:HEAD_CHARS]
        now = time.monotonic()
        if now - self.reported > 0.1:
            self.reported = now
            self.channel.send("printed", p)
        return len(text)


def _guarded(allow_autograd: bool) -> dict:
    """code object -> what calling it means: the shipped solutions, autograd, check() itself."""
    import tinygraph as tg

    from . import checker
    shipped = [(getattr(tg.reference, name), f"tg.reference.{name}") for name in dir(tg.reference)
               if not name.startswith("_")
               and getattr(getattr(tg.reference, name), "__module__", "") == tg.reference.__name__]
    shipped += [(tg.numerical_grad, "tg.numerical_grad"), (checker.check, "check")]
    autograd = [(tg.Node.backward, "backward()"), (tg.backward_steps, "tg.backward_steps"),
                (tg.core.propagate, "backward()"), (tg.core.apply_vjp, "tg.core.apply_vjp"),
                (tg.paths, "tg.paths"), (tg.jacobian, "tg.jacobian"), (tg.gradcheck, "tg.gradcheck")]
    return {fn.__code__: label for fn, label in shipped + ([] if allow_autograd else autograd)
            if hasattr(fn, "__code__")}


def _watch(guarded: dict, seen: list, channel: _Channel) -> Callable:
    """A trace function that notes calls of guarded code (a 'call' event per Python call, nothing per line).

    Each is also sent at once, so a call that then runs out of time still reports it.
    """
    def trace(frame, event, arg):
        label = guarded.get(frame.f_code)
        if label is not None and label not in seen:
            seen.append(label)
            channel.send("noticed", label)
    return trace


def _error_text(exc: BaseException, fn: Callable | None) -> str:
    """"ZeroDivisionError: division by zero (line 4)": the line is the last one in the student's file."""
    code = getattr(fn, "__code__", None)
    tb, line = exc.__traceback__, None
    while tb is not None:
        if code is None or tb.tb_frame.f_code.co_filename == code.co_filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line is not None else ""
    try:
        message = str(exc)
    except BaseException:  # noqa: B036 - an exception class of the student's own whose __str__ fails
        message = "(its message could not be shown)"
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


def serve(load: Callable[[], Callable], calls: list[tuple], channel: _Channel, allow_autograd: bool,
          capture: _Capture) -> None:
    """Load the function, call it on each argument tuple, send an Outcome after each call."""
    fn = load()
    if fn is None:
        return
    guarded = _guarded(allow_autograd)
    for i, args in enumerate(calls):
        copies = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args)
        outcome, seen = Outcome(), []
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        start = time.perf_counter()
        sys.settrace(_watch(guarded, seen, channel))
        try:
            value = fn(*copies)
        except BaseException as exc:  # noqa: B036 - SystemExit and KeyboardInterrupt are feedback too
            sys.settrace(None)
            outcome.error, outcome.error_type = _error_text(exc, fn), type(exc).__name__
        else:
            sys.settrace(None)
            outcome.value = portable(value)
        outcome.seconds = time.perf_counter() - start
        sys.stdout, sys.stderr = saved
        outcome.shortcuts = seen
        outcome.changed = [k for k, (a, c) in enumerate(zip(args, copies))
                           if isinstance(a, np.ndarray) and not np.array_equal(a, c, equal_nan=True)]
        channel.send("printed", capture.printed)
        channel.send("call", i, outcome)


def _limit_memory(extra: int) -> None:
    """RLIMIT_AS: what the process uses now plus `extra` bytes (Linux; elsewhere no limit)."""
    try:
        import resource
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + extra if hard == resource.RLIM_INFINITY else min(hard, used + extra)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):
        pass


def _silence_fds() -> None:
    """Writes to file descriptors 1 and 2 (os.write, C code) go nowhere; stdin reads end at once."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


# -- the caller's side ---------------------------------------------------------------------------


class _Child:
    """One child process running calls, and what it has reported so far.

    `pump()` reads what the pipe holds; `expire()` records a child that stopped
    answering in time; `finish()` kills its process group and reaps it.
    """

    def __init__(self, pid: int, fd: int, n_calls: int, timeout: float, loading: bool,
                 reap: Callable[[], str] | None = None) -> None:
        self.pid, self.fd, self.n_calls, self.timeout, self.loading = pid, fd, n_calls, timeout, loading
        self.reap = reap or self._waitpid
        self.buffer = b""
        self.noticed: list[str] = []  # guarded calls reported during the current call
        self.run = Run()
        self.stage = "start"  # start -> (load ->) calls
        self.deadline = time.monotonic() + STARTUP_TIME
        self.stopped: str | None = None  # "timeout" or "exit" when it did not finish its calls
        self.done = False

    def pump(self) -> None:
        """Read what is waiting on the pipe and handle every complete message."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.expire("exit")
            return
        self.buffer += chunk
        while not self.done and len(self.buffer) >= 8:
            size = struct.unpack("!Q", self.buffer[:8])[0]
            if len(self.buffer) < 8 + size:
                break
            data, self.buffer = self.buffer[8:8 + size], self.buffer[8 + size:]
            self._handle(pickle.loads(data))

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            self.stage = "load" if self.loading else "calls"
            self.deadline = time.monotonic() + self.timeout
        elif kind == "loaded":
            self.stage, self.deadline = "calls", time.monotonic() + self.timeout
        elif kind == "load_error":
            self.run.problem = message[1:]
            self.done = True
        elif kind == "printed":
            self.run.printed = message[1]
        elif kind == "noticed":
            self.noticed.append(message[1])
        elif kind == "call":
            self.noticed = []
            self.run.outcomes.append(message[2])
            self.deadline = time.monotonic() + self.timeout
            self.done = len(self.run.outcomes) >= self.n_calls

    def expire(self, how: str) -> None:
        """The child ran out of time ("timeout") or closed its pipe ("exit") before it was done."""
        if self.stage == "calls":
            self.run.outcomes.append(Outcome(ended=how, shortcuts=self.noticed))
        else:
            self.run.problem = ("ended", self.stage, how)
        self.stopped, self.done = how, True

    def finish(self) -> Run:
        """Kill the child's process group, reap it, and say how it ended if it ended a call."""
        _kill_group(self.pid)
        detail = self.reap()
        os.close(self.fd)
        if self.stopped == "exit" and self.run.outcomes:
            self.run.outcomes[-1].exit_detail = detail
        return self.run

    def _waitpid(self) -> str:
        _, status = os.waitpid(self.pid, 0)
        return _exit_detail(status)


def wait_any(children: list[_Child]) -> list[_Child]:
    """Block until at least one child is done (finished, failed, or past its deadline); return those."""
    while True:
        finished = [c for c in children if c.done]
        if finished:
            return finished
        now = time.monotonic()
        for c in children:
            if c.deadline <= now:
                c.expire("timeout")
        if any(c.done for c in children):
            continue
        wait = max(0.0, min(c.deadline for c in children) - now)
        ready, _, _ = select.select([c.fd for c in children], [], [], wait)
        for c in children:
            if c.fd in ready:
                c.pump()


def _exit_detail(status: int) -> str:
    """How a child ended, from its wait status: 'exit status 0', 'signal 11 (SIGSEGV)'."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"signal {sig} ({signal.Signals(sig).name})"
        except ValueError:
            return f"signal {sig}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else "an unknown end"


def _kill_group(pid: int) -> None:
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
            return
        except (ProcessLookupError, PermissionError):
            continue


def _fork(body: Callable[[_Channel, _Capture], None], n_calls: int, timeout: float, loading: bool,
          memory: int) -> _Child:
    """Fork a child in its own process group that runs `body` and never returns into the caller's code."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        global _inside
        try:
            os.close(read_fd)
            os.setpgid(0, 0)
            _inside = True
            _silence_fds()
            _limit_memory(memory)
            channel = _Channel(write_fd)
            channel.send("ready")
            body(channel, _Capture(channel))
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)
    except (PermissionError, ProcessLookupError):
        pass  # the child has already done it, or has already ended
    return _Child(pid, read_fd, n_calls, timeout, loading)


def start_function(fn: Callable, calls: list[tuple], *, timeout: float, allow_autograd: bool = False,
                   memory: int = MEMORY_LIMIT) -> _Child:
    """A forked child calling `fn(*args)` for each tuple."""
    def body(channel: _Channel, capture: _Capture) -> None:
        serve(lambda: fn, calls, channel, allow_autograd, capture)
    return _fork(body, len(calls), timeout, False, memory)


def start_file(path: str | Path, name: str, calls: list[tuple], *, timeout: float, allow_autograd: bool = False,
               memory: int = MEMORY_LIMIT) -> _Child:
    """A child that loads `name` from the file at `path` and calls it on each tuple.

    Forked from this process where there is fork (fast: numpy and tinygraph are already
    imported), else a fresh `python -m tinygraph.exercises._worker`.
    """
    if hasattr(os, "fork"):
        def body(channel: _Channel, capture: _Capture) -> None:
            serve(lambda: _load(str(path), name, channel, capture), calls, channel, allow_autograd, capture)
        return _fork(body, len(calls), timeout, True, memory)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    job = pickle.dumps({"path": str(path), "name": name, "calls": calls, "allow_autograd": allow_autograd,
                        "memory": memory}, protocol=pickle.HIGHEST_PROTOCOL)
    proc = subprocess.Popen([sys.executable, "-m", "tinygraph.exercises._worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except BrokenPipeError:
        pass

    def reap() -> str:
        code = proc.wait()
        return f"signal {-code}" if code < 0 else f"exit status {code}"
    return _Child(proc.pid, os.dup(proc.stdout.fileno()), len(calls), timeout, True, reap)


def worker_main() -> None:
    """The fresh child of `start_file` where there is no fork: read the job, load the file, run the calls."""
    global _inside
    job = pickle.loads(sys.stdin.buffer.read())
    channel = _Channel(os.dup(1))
    _inside = True
    _silence_fds()
    _limit_memory(job["memory"])
    capture = _Capture(channel)
    channel.send("ready")
    serve(lambda: _load(job["path"], job["name"], channel, capture), job["calls"], channel,
          job["allow_autograd"], capture)


def _load(path: str, name: str, channel: _Channel, capture: _Capture) -> Callable | None:
    """The function `name` from the file, as `python path` would run it; None after a load_error."""
    import importlib.util
    file = Path(path).resolve()
    sys.path.insert(0, str(file.parent))  # the answer's own folder is importable, as with `python answer.py`
    sys.argv = [str(file)]
    spec = importlib.util.spec_from_file_location("__tinygraph_answer__", file)
    if spec is None or spec.loader is None:
        channel.send("load_error", "not-python", "")
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.stdout = sys.stderr = capture
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        channel.send("load_error", "syntax", (exc.lineno, exc.msg))
        return None
    except BaseException as exc:  # noqa: B036 - sys.exit at the top level is a load error too
        channel.send("load_error", "error", _error_text(exc, None))
        return None
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        channel.send("load_error", "missing", defined)
        return None
    if not callable(fn):
        channel.send("load_error", "not-callable", (repr(fn)[:80], type(fn).__name__))
        return None
    channel.send("printed", capture.printed)
    channel.send("loaded")
    return fn


# -- where there is no fork: a thread, stopped with an asynchronous exception ----------------------


class _TimeLimit(BaseException):
    """Raised inside a student's function that ran past its time limit (thread fallback only)."""


def run_in_thread(fn: Callable, calls: list[tuple], *, timeout: float, allow_autograd: bool) -> Run:
    """The fallback without fork: the same protocol from a daemon thread; sys.stdout/stderr restored after."""
    read_fd, write_fd = os.pipe()
    channel = _Channel(write_fd)
    saved = sys.stdout, sys.stderr

    def target() -> None:
        global _inside
        _inside = True
        try:
            channel.send("ready")
            serve(lambda: fn, calls, channel, allow_autograd, _Capture(channel))
        except BaseException:  # noqa: B036 - a stopped thread ends here
            pass
        finally:
            _inside = False
            os.close(write_fd)

    thread = threading.Thread(target=target, name="tinygraph-exercise", daemon=True)
    child = _Child(-1, read_fd, len(calls), timeout, False)  # no process: never finish()ed, never killed
    try:
        thread.start()
        wait_any([child])
        run = child.run
        for _ in range(100):
            if not thread.is_alive():
                break
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_TimeLimit))
            thread.join(0.02)
    finally:
        sys.stdout, sys.stderr = saved
        os.close(read_fd)
    return run
