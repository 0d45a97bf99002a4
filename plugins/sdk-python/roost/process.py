"""Running programs on the host. Needs grants: `programs` (names looked up on the host's
PATH, or absolute paths), `process_dirs` (where jobs may run), `env` (variables a job may
set), `read_files` (reports that may be read back) and `shell = true` for command lines.

    class Tests(Plugin):
        @command(help="run the tests")
        def test(self, ctx):
            self.job = process.start("pytest", ["-q", "--junitxml=.roost/junit.xml"],
                                     cwd="../api", read_back=[".roost/junit.xml"])
            return f"started job {self.job}"

        def on_job_ended(self, ended):
            if ended.job == self.job and not ended.success: ...

`start` returns the job's id at once; how the job ended arrives later as
`Plugin.on_job_ended`. A plugin never waits for a child. `cancel` ends the job's whole
process group (SIGTERM, then SIGKILL after a grace period) and the event comes after that,
marked `cancelled`. Jobs die with the instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

from . import _host


@dataclass
class JobSpec:
    """What to run; `start` and `shell` build one."""

    program: str
    """A program exactly as the grant names it, or with `shell`, a command line for
    `/bin/sh -c`."""
    args: list[str] = field(default_factory=list)
    cwd: str = ""
    """Working directory inside a granted `process_dirs` entry; "" is the first granted."""
    env: list[tuple[str, str]] = field(default_factory=list)
    """Variables to set; each name must be granted in `env`."""
    shell: bool = False
    read_back: list[str] = field(default_factory=list)
    """Files to read back when the job ends, relative to `cwd`."""
    timeout_ms: int = 0
    """A timeout shorter than the plugin's `job_timeout_ms`; 0 uses that limit."""


@dataclass(frozen=True)
class ReadBack:
    """A file a job asked to read back: its contents, or why there are none (not granted,
    missing, not written during the job, too large)."""

    path: str
    contents: Optional[bytes] = None
    error: Optional[str] = None


@dataclass
class JobEnded:
    """How a job ended, given to `Plugin.on_job_ended`."""

    job: int
    """The id `start` returned."""
    exit_code: Optional[int] = None
    """The exit code, when the process exited on its own."""
    signal: Optional[int] = None
    """The signal that ended it, otherwise."""
    cancelled: bool = False
    """Ended by `cancel`: not a failure."""
    timed_out: bool = False
    """Ended by the host after the job's timeout."""
    duration_ms: int = 0
    stdout: str = ""
    """The last bytes of standard output (the plugin's `job_output_kb` at most)."""
    stderr: str = ""
    stdout_bytes: int = 0
    """Bytes written to standard output in all."""
    stderr_bytes: int = 0
    files: list[ReadBack] = field(default_factory=list)
    """The `read_back` files, in the order asked."""

    @property
    def success(self) -> bool:
        """Whether the job exited with code 0."""
        return self.exit_code == 0

    def file(self, path: str) -> Optional[bytes]:
        """The contents of read-back file `path`, or None when it did not come back."""
        for f in self.files:
            if f.path == path:
                return f.contents
        return None


def _spec(program: str, args: Iterable[str], cwd: str, env: Optional[Mapping[str, str]],
          shell: bool, read_back: Iterable[str], timeout: Optional[float]) -> JobSpec:
    if isinstance(args, str) or isinstance(read_back, str):
        raise TypeError("process: args and read_back are lists of strings, not one string")
    if timeout is not None and timeout < 0:
        raise ValueError("process: a timeout cannot be negative")
    return JobSpec(
        program=program,
        args=[str(a) for a in args],
        cwd=cwd,
        env=[(str(k), str(v)) for k, v in (env or {}).items()],
        shell=shell,
        read_back=list(read_back),
        timeout_ms=0 if timeout is None else max(1, int(round(timeout * 1000))),
    )


def start(program: str, args: Iterable[str] = (), cwd: str = "",
          env: Optional[Mapping[str, str]] = None, read_back: Iterable[str] = (),
          timeout: Optional[float] = None) -> int:
    """Starts `program` (spelt as the grant's `programs` spells it) with `args` in `cwd`;
    returns the job id. `timeout` is in seconds. A missing grant raises `AccessDenied`
    naming it; a program not on the host's PATH raises `NotFound`."""
    spec = _spec(program, args, cwd, env, False, read_back, timeout)
    return _host.current().process_start(spec)


def shell(line: str, cwd: str = "", env: Optional[Mapping[str, str]] = None,
          read_back: Iterable[str] = (), timeout: Optional[float] = None) -> int:
    """Runs the command line `line` with `/bin/sh -c` (needs `shell = true` in the grant);
    returns the job id."""
    spec = _spec(line, (), cwd, env, True, read_back, timeout)
    return _host.current().process_start(spec)


def cancel(job: int) -> None:
    """Ends a running job; its `on_job_ended` follows with `cancelled` set. An unknown or
    finished job raises `NotFound`."""
    _host.current().process_cancel(job)
