"""The HTML report at scale: N findings (default 10,000) rendered, its size, and how long headless
Chromium takes to open it.

    python benchmarks/html_report.py [--findings N] [--runs 3] [--keep FILE]

Prints the render time, the file size, and for Chromium (--dump-dom, which returns once the page
has loaded and its script has run) the median wall time on the report and on an empty page, and
the difference: the time the report itself costs the browser (start-up and the DOM's serialization
included); then the page's own clock from navigation start to loaded and laid out. Findings are synthetic (random
key IDs and secrets made at run time, 40 authors, 2,000 paths, 5 years of dates, mixed
verification states); the report redacts them anyway.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.engine.rules import load_ruleset  # noqa: E402
from scanner.findings import CommitInfo, Finding, ScanReport, Verification  # noqa: E402
from scanner.reporters.html import HtmlContext, render_html  # noqa: E402
from scanner.secret import Secret  # noqa: E402
from tests.browser import FLAGS  # noqa: E402
from tests.keygen import key_id, secret_key  # noqa: E402


def synthetic_report(count: int, rng: random.Random) -> ScanReport:
    findings = []
    states = ["valid", "invalid", "invalid", "unknown", "canary", None]
    for index in range(count // 2):
        sha = "%040x" % rng.getrandbits(160)
        year, month, day = 2020 + rng.randrange(5), 1 + rng.randrange(12), 1 + rng.randrange(28)
        commit = CommitInfo(sha, f"Author {rng.randrange(40)}", "dev@example.com",
                            f"{year:04d}-{month:02d}-{day:02d}T12:00:00+00:00", f"change {index}")
        status = rng.choice(states)
        verification = Verification(status) if status else None  # type: ignore[arg-type]
        path = f"services/svc{rng.randrange(200)}/config/settings{rng.randrange(10)}.ini"
        key_print, secret_print = f"k{index:031d}", f"s{index:031d}"
        common = dict(path=path, source="git-blob", commit=commit, verification=verification)
        findings.append(Finding("aws-access-key-id", Secret("key-id", key_id(rng=rng)), line=1, column=20,
                                fingerprint=key_print, pair=secret_print, **common))  # type: ignore[arg-type]
        findings.append(Finding("aws-secret-access-key", Secret("secret", secret_key(rng)), line=2, column=24,
                                fingerprint=secret_print, pair=key_print, **common))  # type: ignore[arg-type]
    return ScanReport(tuple(findings), (), (), 0, count, count // 2, 10**9, 12.0, "/srv/repos/monorepo")


# Appended to a copy of the report (its CSP removed to allow this one script): at the load
# event, force layout and note the page's own clock, from navigation start.
PROBE = ("<script>addEventListener('load', function () { void document.body.offsetHeight; "
         "document.title = 'opened-ms:' + performance.now().toFixed(0); });</script>")


def page_time(page: Path) -> float:
    """Navigation start to loaded and laid out, by the page's clock (no browser start-up)."""
    import re

    with tempfile.TemporaryDirectory() as profile:
        probe = Path(profile) / "probe.html"
        html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
        probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = subprocess.run(["chromium", *FLAGS, f"--user-data-dir={profile}/p", "--dump-dom", probe.as_uri()],
                             check=True, capture_output=True, text=True).stdout
    match = re.search(r"opened-ms:(\d+)", dom)
    assert match, "the probe did not run"
    return int(match.group(1)) / 1000


def _descendants_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by every process under ``root``."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += (int(stats[pid][11]) + int(stats[pid][12])) / os.sysconf("SC_CLK_TCK")
        todo += children.get(pid, [])
    return total


def cpu_to_open(page: Path) -> float:
    """CPU seconds of all browser processes from start to the page's load event, JavaScript on.
    Unlike wall time, this hardly depends on what else the machine is doing."""
    from tests.browser import _Pipe, chromium

    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def wire() -> None:
        read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                                 "about:blank"], preexec_fn=wire, pass_fds=(3, 4),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        pipe = _Pipe(to_child_w, from_child_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            pipe.call("Page.enable", {}, session)
            pipe.call("Page.navigate", {"url": page.as_uri()}, session, wait_event="Page.loadEventFired")
            # Force style and layout, as showing the page would.
            pipe.call("Runtime.evaluate", {"expression": "document.body.offsetHeight"}, session)
            used = _descendants_cpu(proc.pid)
            pipe.call("Browser.close")
            return used
        finally:
            pipe.close()
            proc.wait(timeout=30)


def browser_time(page: Path) -> float:
    with tempfile.TemporaryDirectory() as profile:
        started = time.perf_counter()
        subprocess.run(["chromium", *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                       check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    report = synthetic_report(args.findings, random.Random(7))
    ruleset = load_ruleset([])
    context = HtmlContext(web_remotes={"/srv/repos/monorepo": "https://github.com/acme/monorepo"})
    started = time.perf_counter()
    html = render_html(report, ruleset, context)
    render_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        page = args.keep or Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        empty = Path(folder) / "empty.html"
        empty.write_text("<!DOCTYPE html><title>empty</title>", encoding="utf-8")
        size = page.stat().st_size
        print(f"findings: {len(report.findings)}")
        print(f"render: {render_seconds:.2f} s")
        print(f"size: {size / 1e6:.2f} MB ({size} bytes)")
        report_times, empty_times, page_times = [], [], []
        cpu_empty: list[float] = []
        cpu_report: list[float] = []
        for _ in range(args.runs):
            empty_times.append(browser_time(empty))
            report_times.append(browser_time(page))
            page_times.append(page_time(page))
            cpu_empty.append(cpu_to_open(empty))
            cpu_report.append(cpu_to_open(page))
        report_median, empty_median = statistics.median(report_times), statistics.median(empty_times)
        print(f"chromium --dump-dom, median of {args.runs}: report {report_median:.2f} s, empty page "
              f"{empty_median:.2f} s, report's own cost {report_median - empty_median:.2f} s "
              f"(report runs: {', '.join(f'{t:.2f}' for t in report_times)})")
        print(f"page's own clock, navigation start to loaded and laid out, median of {args.runs}: "
              f"{statistics.median(page_times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in page_times)})")
        print(f"browser CPU seconds to loaded and laid out (all processes), median of {args.runs}: report "
              f"{statistics.median(cpu_report):.2f}, empty page {statistics.median(cpu_empty):.2f}, report's own "
              f"{statistics.median(cpu_report) - statistics.median(cpu_empty):.2f}")
        with open("/proc/loadavg") as handle:
            print(f"load average during the run: {handle.read().split()[0]} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
