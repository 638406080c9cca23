"""The HTML report at scale: N findings (default 10,000) rendered, its size, and how long headless
Chromium takes to open it.

    python benchmarks/html_report.py [--findings N] [--runs 5] [--keep FILE] [--page FILE] [--dump-dom]

"Opens" is measured on the report file as written (its own CSP and script), in one headless
Chromium per run, over the DevTools pipe: from the navigate command until the load event has
fired and the next frame after it has been produced, so every row is parsed into the DOM (the
script checks the count) and what the page shows is styled, laid out and painted. Printed: that
wall time, the page's own clock (DOM parsed, load event, first paint) and the CPU seconds of all
browser processes over the same span (steadier than wall time on a busy machine); medians of
--runs, each run listed; an empty page for comparison. Browser start-up is not included (it is
the same for any page; --dump-dom adds the old measure, which includes it and the DOM's
serialization). Findings are synthetic (random key IDs and secrets made at run time, 40
authors, 2,000 paths, 5 years of dates, mixed verification states); the report redacts them
anyway. --page FILE times an existing HTML file instead.
"""

from __future__ import annotations

import argparse
import json
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


# Evaluated in the page once its load event has fired: wait for the next frame to be produced
# (style, layout and paint of what the load left), then read the page's own clock.
_AFTER_FIRST_FRAME = """new Promise(function (done) { requestAnimationFrame(function () { setTimeout(function () {
  var nav = performance.getEntriesByType("navigation")[0];
  var paint = performance.getEntriesByName("first-contentful-paint")[0];
  done(JSON.stringify({painted: performance.now(), load: nav.loadEventEnd, dcl: nav.domContentLoadedEventEnd,
    fcp: paint ? paint.startTime : -1, rows: document.querySelectorAll("#findings tr[data-s]").length}));
}, 0); }); })"""


def open_page(page: Path) -> dict[str, float]:
    """Open ``page`` (unchanged: its own CSP and script) in a running headless Chromium and time it.

    ``wall``: from the navigate command until the load event has fired and the next frame after it
    has been produced (every row parsed into the DOM, styled, laid out and painted as far as the
    page needs), measured outside the browser; ``painted``/``load``/``dcl``/``fcp``: the page's own
    clock from navigation start; ``cpu``: CPU seconds of all browser processes over that same span
    (hardly affected by what else the machine runs, unlike wall time); ``rows``: finding rows in the DOM.
    """
    from tests.browser import Session

    with Session() as browser:
        cpu_before = _descendants_cpu(browser.proc.pid)
        started = time.perf_counter()
        browser.open(page)
        figures = json.loads(browser.evaluate(_AFTER_FIRST_FRAME))
        wall = time.perf_counter() - started
        cpu = _descendants_cpu(browser.proc.pid) - cpu_before
    return {"wall": wall, "cpu": cpu, "painted": figures["painted"] / 1000, "load": figures["load"] / 1000,
            "dcl": figures["dcl"] / 1000, "fcp": figures["fcp"] / 1000, "rows": figures["rows"]}


def dump_dom(page: Path) -> float:
    with tempfile.TemporaryDirectory() as profile:
        started = time.perf_counter()
        subprocess.run(["chromium", *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                       check=True, capture_output=True)
        return time.perf_counter() - started


def chromium_version() -> str:
    from tests.browser import chromium

    return subprocess.run([chromium(), "--version"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--dump-dom", action="store_true", help="also time chromium --dump-dom (the old measure)")
    parser.add_argument("--page", type=Path, help="time this HTML file instead of rendering one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.page:
            page = args.page
            expected = page.read_text(encoding="utf-8").count("<tr data-s=")
        else:
            report = synthetic_report(args.findings, random.Random(7))
            context = HtmlContext(web_remotes={"/srv/repos/monorepo": "https://github.com/acme/monorepo"})
            started = time.perf_counter()
            html = render_html(report, load_ruleset([]), context)
            print(f"render: {time.perf_counter() - started:.2f} s")
            page = args.keep or Path(folder) / "report.html"
            page.write_text(html, encoding="utf-8")
            expected = len(report.findings)
        empty = Path(folder) / "empty.html"
        empty.write_text("<!DOCTYPE html><title>empty</title>", encoding="utf-8")
        size = page.stat().st_size
        print(f"findings: {expected}; size: {size / 1e6:.2f} MB ({size} bytes)")
        if args.dump_dom:
            print(f"chromium --dump-dom wall time (start-up and serializing the DOM included): {dump_dom(page):.2f} s")
        opened: dict[str, list[dict[str, float]]] = {"report": [], "empty page": []}
        for _ in range(args.runs):  # interleaved: both see the same machine load
            opened["report"].append(open_page(page))
            opened["empty page"].append(open_page(empty))
        assert all(run["rows"] == expected for run in opened["report"]), "rows missing from the DOM"
        print(f"opening in headless {chromium_version()}, median of {args.runs} [each run]:")
        for name, runs in opened.items():
            print(f"  {name}: " + "; ".join(
                f"{label} {statistics.median(r[key] for r in runs):.2f} s "
                f"[{', '.join(f'{r[key]:.2f}' for r in runs)}]" if all(r[key] >= 0 for r in runs) else f"{label} none"
                for key, label in (("wall", "navigate to loaded and painted"), ("load", "load event"),
                                   ("dcl", "DOM parsed"), ("fcp", "first paint"), ("cpu", "browser CPU"))))
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "?")
        print(f"machine: {cpu}, {os.cpu_count()} cores")
        with open("/proc/loadavg") as handle:
            print(f"load average during the run: {handle.read().split()[0]} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
