"""The command line: parse, run, print, choose the exit code. The one error boundary."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.errors import KeysweepError, UsageError
from scanner.exitcodes import EXIT_FAILURE, EXIT_USAGE


EPILOG = """exit codes:
  0  nothing found
  1  findings (after baseline and allowlists)
  2  usage or configuration error (bad flag, missing path, broken rule or config file, bad revision)
  3  any other failure (git or AWS failed, a remediation action failed, internal error)
"""


def _size(text: str) -> int:
    from scanner.config import parse_size

    try:
        size = parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 500000, 512k, 25m)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError("a size must be more than 0")
    return size


_WIDTH: list[int] = []


def _help_width() -> int:
    """``shutil.get_terminal_size().columns - 2``, the width argparse formats help for, asked
    once, without importing shutil."""
    if not _WIDTH:
        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            columns = 0
        if columns <= 0:
            try:
                # unused-ignore: mypy 1.10's typeshed has sys.__stdout__ as TextIO, not TextIO | None
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr, unused-ignore]
            except (AttributeError, ValueError, OSError):
                columns = 0
        _WIDTH.append((columns or 80) - 2)
    return _WIDTH[0]


class _Help(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal's width. argparse makes one for every
    argument added (to check its metavar), and each would ask the terminal, importing shutil
    for it: ~2.5 ms of every run, the pre-commit hook's included."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", _help_width())
        super().__init__(prog, **kwargs)


class _RawHelp(_Help, argparse.RawDescriptionHelpFormatter):
    """RawDescriptionHelpFormatter (descriptions and epilogs kept as written), told the width."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keysweep",
        description="Find leaked AWS credentials in git repositories and folders; verify and revoke live ones.",
        epilog=EPILOG,
        formatter_class=_RawHelp,
    )
    parser.add_argument("--version", action="version", version=f"keysweep {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    scan = commands.add_parser(
        "scan", help="scan a repository (work tree and history) or a folder", epilog=EPILOG,
        formatter_class=_RawHelp,
    )
    scan.add_argument("path", nargs="?", default=".",
                      help="repository, folder or file to scan (default: .); - reads standard input")
    scan.add_argument("files", nargs="*", metavar="FILE",
                      help="with --staged (as the pre-commit hook runs it: --staged -- . FILE...): the files "
                           "pre-commit passes; when they are not all staged changes (pre-commit --all-files "
                           "or --files) they are scanned whole")
    what = scan.add_argument_group("what to scan")
    modes = what.add_mutually_exclusive_group()
    modes.add_argument("--no-history", action="store_true", help="scan files on disk only")
    modes.add_argument("--history-only", action="store_true", help="scan git history only, not the work tree")
    modes.add_argument("--staged", action="store_true", help="scan lines added by the staged change (pre-commit)")
    modes.add_argument("--range", dest="revision_range", metavar="A..B", help="scan secrets introduced by commits in a revision range")
    modes.add_argument("--since", metavar="REV", help="same as --range REV..HEAD")
    modes.add_argument("--pre-push", action="store_true", help="scan the commits being pushed (pre-commit's PRE_COMMIT_FROM_REF..PRE_COMMIT_TO_REF)")
    what.add_argument("--stdin-name", metavar="NAME",
                      help="with scan -: the file name reports give standard input (default <stdin>)")
    what.add_argument("--all-objects", action="store_true", help="also scan objects no ref reaches (dangling commits, loose blobs)")
    what.add_argument("--max-file-size", type=_size, default=None, metavar="SIZE", help="skip (and report) files and blobs larger than this (default 25m)")
    what.add_argument("--rules", action="append", type=Path, default=[], metavar="PATH", help="extra rule file or folder (repeatable)")
    what.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip paths matching this gitignore-like glob (repeatable; adds to the configuration's)")
    what.add_argument("--config", type=Path, metavar="FILE", help="configuration file (default: .keysweep.yaml or [tool.keysweep] in pyproject.toml)")
    what.add_argument("--no-config", action="store_true",
                      help="read no configuration file and honour no inline allow comment (for CI on untrusted changes: their own .keysweep.yaml or '# keysweep:allow' could hide their secrets)")
    what.add_argument("--baseline", type=Path, metavar="FILE", help="report only findings not in this baseline")
    what.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: number of cores, at most 8)")
    out = scan.add_argument_group("output")
    out.add_argument("-f", "--format", choices=("text", "json", "jsonl", "sarif", "html"), default=None, help="report format (default text; html: a self-contained page, secrets always redacted)")
    out.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the report to FILE instead of standard output")
    out.add_argument("--show-secrets", action="store_true", help="print secrets in clear (default: redacted)")
    out.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                     help="colour the text report: auto (on a terminal, unless NO_COLOR; FORCE_COLOR forces it), "
                          "always or never (default auto)")
    out.add_argument("--no-color", action="store_true", help="same as --color=never")
    out.add_argument("--no-progress", action="store_true", help="no progress display on standard error")
    _add_verbosity(out)
    out.add_argument("--fail-on", choices=("critical", "high", "medium", "low"), default=None, metavar="SEVERITY",
                     help="exit 1 only for findings of this severity or worse: critical, high, medium, low (default: any finding)")
    aws = scan.add_argument_group("AWS (network; nothing is sent without --verify or --remediate)")
    aws.add_argument("--verify", action="store_true", help="check each key pair with STS GetCallerIdentity")
    aws.add_argument("--remediate", choices=("deactivate", "delete"),
                     help="plan (or with --apply, perform) remediation of keys proven live (verifies each pair itself)")
    aws.add_argument("--include-unconfirmed", action="store_true",
                     help="with --remediate: also act on key IDs found without a secret or whose check failed "
                          "(never on a key whose found secret does not sign)")
    _add_remediation_flags(aws)

    baseline = commands.add_parser("baseline", help="manage baselines of known findings", formatter_class=_Help)
    baseline_commands = baseline.add_subparsers(dest="baseline_command", metavar="ACTION")
    baseline_commands.required = True
    create = baseline_commands.add_parser("create", help="write a baseline of current findings",
                                            formatter_class=_Help)
    create.add_argument("path", nargs="?", default=".", help="repository or folder (default: .)")
    create.add_argument("--output", type=Path, metavar="FILE", help="baseline file (default: .keysweep-baseline.json at PATH)")
    create.add_argument("--no-history", action="store_true", help="baseline files on disk only")
    create.add_argument("--rules", action="append", type=Path, default=[], metavar="PATH",
                        help="extra rule file or folder (repeatable), as for scan")
    create.add_argument("--config", type=Path, metavar="FILE",
                        help="configuration file (default: .keysweep.yaml or [tool.keysweep] in pyproject.toml)")
    create.add_argument("--no-config", action="store_true", help="read no configuration file")
    _add_verbosity(create)

    revoke = commands.add_parser("revoke", help="deactivate (and with --delete, delete) an access key or a Bedrock API key in IAM",
                                  formatter_class=_Help)
    revoke.add_argument("key_id", metavar="KEY_ID", help="an access key ID, or a Bedrock API key's service-specific credential ID")
    revoke.add_argument("--delete", action="store_true", help="delete the key after deactivating it")
    _add_remediation_flags(revoke, scan=False)
    _add_verbosity(revoke)
    _add_audit_parser(commands)
    return parser


def _add_audit_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """keysweep audit (issue 11): the parser only; the command imports Dask when it runs."""
    from scanner.reporters import FORMATS

    audit = commands.add_parser(
        "audit", help="audit many repositories (folders, git URLs) incrementally, on Dask", epilog=EPILOG,
        formatter_class=_RawHelp,
        description="Scan the history of every repository named (a repository, a folder of repositories, "
                    "or a git URL mirrored into the cache), reading only objects earlier audits have not "
                    "read. Needs the fleet extra: pip install 'keysweep[fleet]'.",
    )
    audit.add_argument("targets", nargs="*", metavar="TARGET", help="repository, folder of repositories, or git URL")
    audit.add_argument("--targets", dest="targets_file", type=Path, metavar="FILE", help="read targets from FILE (one a line, # comments; - for standard input)")
    audit.add_argument("--cache", type=Path, metavar="DIR", help="where URL targets are mirrored (default: ~/.cache/keysweep/mirrors)")
    audit.add_argument("--state", type=Path, metavar="FILE", help="audit state (default: ~/.local/state/keysweep/audit.sqlite)")
    audit.add_argument("--full", action="store_true", help="read every object again, ignoring what the state says was read")
    audit.add_argument("--baseline", type=Path, metavar="FILE", help="known findings: recorded as baselined, not reported")
    where = audit.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask scheduler's workers")
    where.add_argument("--workers", type=int, metavar="N", help="workers of the embedded local cluster (default: number of cores)")
    audit.add_argument("-f", "--format", choices=FORMATS, default=None, help="report format (default text)")
    audit.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the report to FILE instead of standard output")
    audit.add_argument("--show-secrets", action="store_true", help="print secrets in clear (default: redacted)")
    audit.add_argument("--verify", action="store_true", help="check each key pair with STS GetCallerIdentity")
    audit.add_argument("--region", metavar="NAME", help="AWS region for --verify")
    audit.add_argument("--fail-on", choices=("critical", "high", "medium", "low"), default=None,
                       help="exit 1 only for findings of this severity or higher (default: any finding)")
    audit.add_argument("--no-progress", action="store_true", help="no progress display on standard error")
    _add_verbosity(audit)


def _add_verbosity(group: argparse._ActionsContainer) -> None:
    loud = group.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="say more on standard error: what is scanned and how long each part took (-vv: debug)")
    loud.add_argument("-q", "--quiet", action="store_true", help="no warnings on standard error (errors still shown)")


def configure_logging(verbose: int, quiet: bool) -> None:
    """Diagnostics go to standard error through the ``scanner`` logger: -q keeps only errors,
    the default adds warnings, -v information (what is scanned, timings), -vv debug lines.
    Nothing logged ever holds a secret: messages carry counts, timings, and report texts that
    are already redacted. logging itself is set up when the first message reaches it
    (scanner.diagnostics): a scan that has nothing to say never imports it."""
    from scanner import diagnostics

    level = (diagnostics.ERROR if quiet else diagnostics.DEBUG if verbose >= 2 else diagnostics.INFO if verbose
             else diagnostics.WARNING)
    diagnostics.configure(level, lambda: _install_log_handler(level))


def _install_log_handler(level: int) -> None:
    import logging

    class Diagnostics(logging.Formatter):
        """Formats keysweep's log records as its messages always looked ("keysweep: warning: ..."),
        with control characters escaped: a message may quote a path or a ref name."""

        LABELS = {"WARNING": "warning: ", "ERROR": "error: ", "CRITICAL": "error: ", "DEBUG": "debug: "}

        def format(self, record: logging.LogRecord) -> str:
            return _printable(f"keysweep: {self.LABELS.get(record.levelname, '')}{record.getMessage()}")

    class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
        """On a terminal, a message first clears the line: a progress line may be drawn there
        (it is redrawn at its next update)."""

        def emit(self, record: logging.LogRecord) -> None:
            if getattr(self.stream, "isatty", lambda: False)():
                self.stream.write("\r\033[K")
            super().emit(record)

    logger = logging.getLogger("scanner")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = LineHandler(sys.stderr)
    handler.setFormatter(Diagnostics())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(level)


def _add_remediation_flags(group: argparse._ActionsContainer, *, scan: bool = True) -> None:
    """The AWS flags; revoke knows only a key ID, so it shows none that need the secret."""
    group.add_argument("--apply", action="store_true", help="perform the remediation (default: print the plan only)")
    group.add_argument("--profile", metavar="NAME", help="AWS profile for the operator's credentials")
    group.add_argument("--region", metavar="NAME", help="AWS region for STS and IAM calls (default: us-east-1 or the profile's)")
    group.add_argument("--audit-log", type=Path, metavar="FILE", help="append every action to this JSON-lines file (default: ~/.local/state/keysweep/audit.jsonl)")
    group.add_argument("--allow-account", action="append", default=[], metavar="ID", help="only verify/remediate keys of this account (repeatable)")
    if scan:
        group.add_argument("--use-leaked-key", action="store_true", help="sign remediation calls with the leaked key itself")
    group.add_argument("--quarantine", action="store_true", help="also attach AWSCompromisedKeyQuarantineV3 to the key's user")
    if scan:
        group.add_argument("--verify-canary", action="store_true", help="verify keys of known canary accounts too (trips the canary)")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C (workers stopped, no partial output file)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_termination(signum: int, _frame: object) -> None:
    # Once: a second signal must not interrupt the clean-up the first one started.
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Terminated(signum)


def _install_signal_handlers() -> None:
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:
            signal.signal(getattr(signal, name), _on_termination)


# Stands for a "--" after the first one (NUL is never in an argument): argparse drops every
# "--" among the positionals (Python 3.11), so a staged file named "--", which pre-commit
# passes after `-- .`, vanished from the file list, and its change went unscanned.
_LITERAL_DASHES = "\x00--"


def _protect_dashes(argv: Sequence[str]) -> list[str]:
    arguments = list(argv)
    if "--" in arguments:
        first = arguments.index("--") + 1
        arguments[first:] = [_LITERAL_DASHES if argument == "--" else argument for argument in arguments[first:]]
    return arguments


def _restore_dashes(args: argparse.Namespace) -> argparse.Namespace:
    for name in ("path", "files", "targets", "key_id"):
        value = getattr(args, name, None)
        if value == _LITERAL_DASHES:
            setattr(args, name, "--")
        elif isinstance(value, list):
            setattr(args, name, ["--" if item == _LITERAL_DASHES else item for item in value])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # A report must never die on a terminal that cannot show a character.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = _restore_dashes(parser.parse_args(_protect_dashes(sys.argv[1:] if argv is None else argv)))
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    _install_signal_handlers()
    try:
        if args.command == "scan":
            from scanner.commands import scan_command

            return scan_command(args)
        if args.command == "baseline":
            from scanner.commands import baseline_create_command

            return baseline_create_command(args)
        if args.command == "audit":
            from scanner.fleet.command import audit_command

            return audit_command(args)
        from scanner.commands import revoke_command

        return revoke_command(args)
    except UsageError as exc:
        print(_printable(f"keysweep: error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except KeysweepError as exc:
        print(_printable(f"keysweep: error: {exc}"), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as exc:
        signum = int(exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
        name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"keysweep: {name}", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:
        # The reader (head, less) went away: nothing left to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the one boundary: a line, not a traceback
        if os.environ.get("KEYSWEEP_DEBUG"):
            raise
        print(_printable(f"keysweep: internal error: {type(exc).__name__}: {exc} (set KEYSWEEP_DEBUG=1 for a traceback)"),
              file=sys.stderr)
        return EXIT_FAILURE


def entry() -> int:
    """The ``keysweep`` command and ``python -m scanner``: main(), then a shutdown that does
    not walk the heap.

    Python's shutdown runs several full garbage collections over every object still alive
    (~17,000 after a scan): 10-25 ms of a pre-commit hook run that takes 0.1 s. Everything
    alive now lives until the process ends anyway, so it is moved out of the collector's
    sight (gc.freeze). Exit handlers still run and files are still closed and flushed;
    only cyclic garbage made before this point is left to the operating system.
    """
    code = main()
    import gc

    gc.freeze()
    return code


def _printable(message: str) -> str:
    """A line for standard error: control characters escaped, and what looks like a key
    masked (messages name paths, and a path from a repository's configuration or the
    command line can hold a key: "no such rule file or folder" quoted it whole)."""
    from scanner.errors import mask_credentials
    from scanner.reporters.text import escape_control

    return escape_control(mask_credentials(message, quoted=False))


def write_output(text: str, output: Path | None, *, private: bool = False) -> None:
    """Write a report to standard output, or to ``output`` as a shell redirection would.

    A regular file (new, or behind a symlink) is replaced atomically: never half-written,
    even when interrupted. Anything else (a FIFO, a terminal, /dev/stdout, /dev/null) is
    opened and written into; it is never replaced by a file. A new file gets the user's
    umask, or 0600 when ``private`` (the report holds secrets in clear).
    """
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    data = text.encode("utf-8", "backslashreplace")
    try:
        info: os.stat_result | None = os.stat(output)  # follows symlinks
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"cannot write {output}: it is a folder")
        try:
            with open(output, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        return
    target = Path(os.path.realpath(output))  # through a symlink: replace its target, not the link
    if os.path.islink(output) and not target.is_relative_to(os.path.realpath(output.parent)):
        # A link a scanned repository committed (.keysweep-baseline.json, results.sarif ->
        # ~/.bashrc) would have a report replace any file the user can write.
        raise UsageError(f"{output} is a link to {target}, outside its folder: not written through "
                         "(remove the link, or name the file itself)")
    if info is not None:
        mode = stat.S_IMODE(info.st_mode)
    elif private:
        mode = 0o600
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    import tempfile

    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass
