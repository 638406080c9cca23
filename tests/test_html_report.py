"""The HTML report, as a person meets it: rendered by the real CLI from a real, verified scan of a
generated repository, then opened in headless Chromium.

One render (module fixture) and four browser launches: the DOM with JavaScript, the DOM without
(scripting off through the DevTools pipe, as --blink-settings=scriptEnabled=false leaves --dump-dom empty),
a screenshot (kept in build/test-artefacts/, or $KEYSWEEP_ARTEFACTS), and a page whose
Content-Security-Policy is removed, to show the request check can fail.
"""

from __future__ import annotations

import html as html_module
import http.server
import json
import os
import random
import re
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from scanner.engine.rules import load_ruleset
from scanner.findings import CommitInfo, Finding, ScanReport, Verification
from scanner.reporters.html import CHUNK_ROWS, HtmlContext, render_html, web_base
from scanner.secret import Secret
from tests.browser import Session, browse, dom_without_javascript
from tests.conftest import REPO_ROOT, run_keysweep
from tests.gitrepo import GitRepo
from tests.keygen import KeySet, key_id

CANARY_ACCOUNT = "052310077262"  # canarytokens.org, in scanner/data/aws-canary-accounts.txt
HOSTILE_PATH = "conf/<img src=x onerror=alert(1)>.env"
HOSTILE_SUBJECT = "deploy </script><script>document.title='pwned'</script> & \u2028 fix"
HOSTILE_AUTHOR = "Eve \"Quote\" O'Hara & Co"
REMOTE = "https://bob:hunter2token@github.com/acme/payments.git"
MONTH = 24 * 31  # GitRepo ticks are hours


@dataclass
class Rendered:
    html_path: Path
    html: str
    json: dict[str, Any]
    keys: list[KeySet]
    leaked_secrets: list[str]
    live_key_id: str
    commits: list[str]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    tmp = tmp_path_factory.mktemp("html")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"

    def moto_api(path: str, data: bytes | None = None) -> None:
        request = urllib.request.Request(f"{url}/moto-api/{path}", data=data, method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request).read()

    # moto's backends are process-wide: start clean, and leave authentication as found.
    moto_api("reset")
    try:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        iam.create_user(UserName="security")
        operator = iam.create_access_key(UserName="security")["AccessKey"]
        iam.create_user(UserName="deploy")
        live = iam.create_access_key(UserName="deploy")["AccessKey"]

        repo = GitRepo(tmp / "payments")
        repo.git("remote", "add", "origin", REMOTE)
        keys = [KeySet.generate() for _ in range(4)] + [KeySet.generate(account=CANARY_ACCOUNT)]
        commits = []
        # Leaks spread over months: dead keys early, the live one last ("still leaking").
        for index, key in enumerate(keys[:3]):
            repo.ticks += MONTH * (1 + index % 2)
            commits.append(repo.commit(f"settings {index}", {
                f"svc{index}/settings.ini": f"aws_access_key_id = {key.key_id}\naws_secret_access_key = {key.secret}\n"}))
        repo.ticks += MONTH
        commits.append(repo.commit(HOSTILE_SUBJECT, {HOSTILE_PATH: f"AWS_ACCESS_KEY_ID={keys[3].key_id}\n"}))
        repo.write("canary.cfg", f"aws_access_key_id={keys[4].key_id}\naws_secret_access_key={keys[4].secret}\n")
        repo.git("add", "canary.cfg")
        repo.ticks += MONTH
        repo.git("commit", "-q", "-m", "canary", f"--author={HOSTILE_AUTHOR} <eve@example.com>")
        commits.append(repo.git("rev-parse", "HEAD"))
        repo.ticks += MONTH * 2
        commits.append(repo.commit("deploy credentials", {
            "deploy/credentials": f"[default]\naws_access_key_id = {live['AccessKeyId']}\n"
                                  f"aws_secret_access_key = {live['SecretAccessKey']}\n"}))

        # A previous run deactivated a key: its audit log is given to the report.
        audit = tmp / "audit.jsonl"
        audit.write_text(json.dumps({"time": "2024-06-01T00:00:00+00:00", "key_id": keys[0].key_id,
                                     "action": "deactivate", "result": "ok", "dry_run": False}) + "\n")
        env = {
            "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": operator["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": operator["SecretAccessKey"], "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        moto_api("reset-auth", b"0")  # IAM authentication on: unknown keys are invalid

        html_path = tmp / "report.html"
        # --show-secrets on purpose: the HTML report redacts anyway.
        html_run = run_keysweep("scan", "--no-progress", "--verify", "--show-secrets", "--audit-log", audit,
                                "--format", "html", "-o", html_path, repo.path, env=env)
        assert html_run.returncode == 1, html_run.stderr
        json_run = run_keysweep("scan", "--no-progress", "--verify", "--format", "json", repo.path, env=env)
        assert json_run.returncode == 1, json_run.stderr
        yield Rendered(html_path, html_path.read_text(encoding="utf-8"), json_run.json(), keys,
                       [k.secret for k in keys] + [live["SecretAccessKey"]], live["AccessKeyId"], commits)
    finally:
        moto_api("reset-auth", b"inf")
        moto_api("reset")
        server.stop()


def _counts(dom: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'data-count="([^"]+)">(\d+)<', dom)}


def _rows(dom: str) -> list[str]:
    return re.findall(r"<tr data-s=.*?</tr>", dom, flags=re.S)


def test_report_holds_every_finding_and_the_json_counts(rendered: Rendered) -> None:
    findings = rendered.json["findings"]
    states = Counter((f["verification"] or {}).get("status", "not verified") for f in findings)
    # The scan found each kind of key this test planted: the counts below are not all zero.
    assert states["valid"] == 2 and states["invalid"] >= 6 and states["canary"] == 2, states
    dom = browse(rendered.html_path, "--dump-dom")
    assert 'data-js="on"' in dom  # the inline script ran: its CSP hash is right
    assert len(_rows(dom)) == len(findings)
    counts = _counts(dom)
    assert counts["total"] == len(findings)
    for state in ("valid", "invalid", "unknown", "canary"):
        assert counts[f"verification-{state}"] == states[state], state
    assert counts["verification-not-verified"] == states["skipped"] + states["not verified"]
    assert counts["remediation-deactivated"] == 2  # key ID and secret of the key in the audit log
    for finding in findings:
        assert f"{finding['path']}:{finding['line']}".replace("<", "&lt;").replace(">", "&gt;") in dom
    assert "<title>keysweep audit report" in dom  # the commit subject's script did not run
    # Every planted file is still in HEAD: the Lives column says so for each row.
    assert ">Lives</button></th>" in dom and all("<td>HEAD</td>" in row for row in _rows(dom))


def test_report_without_javascript_shows_all_rows(rendered: Rendered) -> None:
    dom = dom_without_javascript(rendered.html_path)
    assert 'data-js="on"' not in dom
    rows = _rows(dom)
    assert len(rows) == len(rendered.json["findings"])
    assert not any(re.match(r"<tr[^>]*\shidden", row) for row in rows)
    assert _counts(dom)["total"] == len(rows)


def test_screenshot(rendered: Rendered) -> None:
    folder = Path(os.environ.get("KEYSWEEP_ARTEFACTS") or REPO_ROOT / "build" / "test-artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    shot.unlink(missing_ok=True)
    browse(rendered.html_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_page_makes_no_request_even_with_injected_markup(rendered: Rendered, tmp_path: Path) -> None:
    """The CSP forbids every request: markup that slipped in (were escaping ever to fail) loads nothing."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    injected = (f'<img src="{base}/img"><link rel="stylesheet" href="{base}/css"><script src="{base}/js"></script>'
                f'<iframe src="{base}/frame"></iframe><script>document.title="injected ran"</script></body>')
    try:
        probe = tmp_path / "probe.html"
        probe.write_text(rendered.html.replace("</body>", injected), encoding="utf-8")
        _Recorder.hits = []
        dom = browse(probe, "--dump-dom", "--virtual-time-budget=2000")
        assert _Recorder.hits == []
        assert "<title>injected ran" not in dom and "<title>keysweep audit report" in dom and 'data-js="on"' in dom
        # Control: the same markup without the policy does reach the server, so the check can fail.
        control = tmp_path / "control.html"
        control.write_text(f"<!DOCTYPE html><html><body>{injected}</html>", encoding="utf-8")
        browse(control, "--dump-dom", "--virtual-time-budget=2000")
        assert _Recorder.hits
    finally:
        server.shutdown()
        server.server_close()


def test_file_names_no_external_resource(rendered: Rendered) -> None:
    html = rendered.html
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp is not None
    policy = html_module.unescape(csp.group(1))
    # Nothing but the page's own style and script, by hash: no source, no 'unsafe-*', no data: or blob:.
    directives = [d.strip() for d in policy.split(";")]
    assert directives[:3] == ["default-src 'none'", "form-action 'none'", "base-uri 'none'"]
    assert [d.split(" ")[0] for d in directives[3:]] == ["style-src", "script-src"]
    assert all(re.fullmatch(r"(style|script)-src 'sha256-[A-Za-z0-9+/]{43}='", d) for d in directives[3:])
    assert html.index('http-equiv="Content-Security-Policy"') < html.index("<title>")  # before any repository text
    tags = re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)\b([^>]*)>", html)
    assert {name.lower() for name, _ in tags}.isdisjoint({"link", "img", "iframe", "object", "embed", "base", "audio",
                                                         "video", "source", "frame", "form"})
    for name, attributes in tags:
        assert not re.search(r"\s(src|srcset|poster|data|action|background|ping)=", attributes, flags=re.I), name
        assert name == "a" or not re.search(r"\shref=", attributes), name
    assert not re.search(r"@import|url\(", html)
    urls = re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]*", html, flags=re.I)
    allowed = re.compile(r"https://github\.com/acme/payments/commit/[0-9a-f]{40}|http://www\.w3\.org/2000/svg")
    assert urls and all(allowed.fullmatch(u) for u in urls), [u for u in urls if not allowed.fullmatch(u)]
    for sha in rendered.commits:
        assert f'href="https://github.com/acme/payments/commit/{sha}"' in html
    assert "hunter2token" not in html and "bob" not in html


def test_no_secret_in_the_file(rendered: Rendered) -> None:
    html = rendered.html
    for secret in rendered.leaked_secrets:
        assert secret not in html
        assert secret.replace("/", "&#x2f;") not in html
    for key_id in [k.key_id for k in rendered.keys] + [rendered.live_key_id]:
        assert key_id[:9] not in html  # nothing of a key ID beyond its first 8 characters
        assert key_id[:8] in html  # the redacted form is there: the check above looks at the right text
    assert "always" in html and "--show-secrets" in html  # the page says so


def test_hostile_repository_strings_are_escaped(rendered: Rendered) -> None:
    html = rendered.html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "</script><script>document.title" not in html
    assert html.count("<script>") == 1
    assert "Eve &#34;Quote&#34; O&#39;Hara &amp; Co" in html


@pytest.mark.parametrize(("remote", "expected"), [
    ("https://github.com/acme/app.git", "https://github.com/acme/app"),
    ("https://user:tok@github.com/acme/app", "https://github.com/acme/app"),
    ("git@github.com:acme/app.git", "https://github.com/acme/app"),
    ("ssh://git@github.com:22/acme/app.git", "https://github.com/acme/app"),
    ("https://oauth2:glpat@gitlab.com/group/sub/proj.git", "https://gitlab.com/group/sub/proj"),
    ("git@gitlab.com:group/proj.git", "https://gitlab.com/group/proj"),
    ("https://example.com/acme/app.git", None),
    ("/srv/git/app.git", None),
    ("https://github.com/acme/app/../../evil", None),
    ('https://github.com/acme/"onmouseover=x', None),
    ("javascript:alert(1)//github.com/a/b", None),
    ("", None),
])
def test_web_base(remote: str, expected: str | None) -> None:
    assert web_base(remote) == expected


def test_scan_never_imports_jinja2(tmp_path: Path) -> None:
    import sys

    (tmp_path / "a.txt").write_text("nothing here\n")
    code = ("import sys; from scanner.cli import main; rc = main(['scan', '--no-progress', '--format', 'json', "
            f"{str(tmp_path)!r}]); print('jinja2' in sys.modules, rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "False 0", proc.stderr


def test_folder_report_without_git_or_remote(tmp_path: Path, keys: KeySet) -> None:
    (tmp_path / "app.env").write_text(keys.fill("AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"))
    result = run_keysweep("scan", "--no-progress", "--format", "html", tmp_path)
    assert result.returncode == 1, result.stderr
    page = result.stdout
    assert page.startswith("<!DOCTYPE html>") and len(_rows(page)) == 2
    assert "app.env:1" in page and "app.env:2" in page and "<a href" not in page
    assert "in files on disk only" in page  # no timeline without commits, and it says why
    assert keys.secret not in page and keys.key_id[:9] not in page


# --- A large report: rows in tables of CHUNK_ROWS, still one list to read, sort, filter, print --------

def _large_report(count: int) -> ScanReport:
    rng = random.Random(12)
    findings = []
    for index in range(count):
        commit = CommitInfo("%040x" % rng.getrandbits(160), f"Author {index % 40}", "dev@example.com",
                            f"{2020 + index % 5:04d}-{1 + index % 12:02d}-{1 + index % 28:02d}T12:00:00+00:00",
                            f"change {index}")
        status = ("valid", "invalid", "unknown", None)[index % 4]
        findings.append(Finding("aws-access-key-id", Secret("key-id", key_id(rng=rng)), f"svc{index % 97}/app.env",
                                1, 1, "git-blob", f"print{index}", commit=commit,
                                verification=Verification(status) if status else None))  # type: ignore[arg-type]
    return ScanReport(tuple(findings), (), (), 0, count, count, 10**6, 1.0, "/srv/repos/big")


@pytest.fixture(scope="module")
def large_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ScanReport]:
    report = _large_report(CHUNK_ROWS * 2 + 200)
    page = tmp_path_factory.mktemp("large") / "large.html"
    page.write_text(render_html(report, load_ruleset([]), HtmlContext()), encoding="utf-8")
    return page, report


def test_large_report_is_chunked(large_page: tuple[Path, ScanReport]) -> None:
    html = large_page[0].read_text(encoding="utf-8")
    findings = html[html.index('id="findings"'):html.index('id="by-author"')]
    chunks = findings.split('<div class="chunk')[1:]
    assert [len(_rows(chunk)) for chunk in chunks] == [CHUNK_ROWS, CHUNK_ROWS, 200]
    assert findings.count("<thead>") == 1 and findings.count('<thead class="again">') == 2  # headings once on screen
    assert findings.count("<th>Pushed</th>") == 0 and ">Lives</th>" not in findings
    assert "Left out, as no finding has a value for them: lives, pushed" in html


_VISIBLE = "Array.from(document.querySelectorAll('#findings tr[data-s]')).filter(r => r.offsetParent !== null)"


def test_large_report_sorts_filters_and_prints_across_chunks(large_page: tuple[Path, ScanReport]) -> None:
    page, report = large_page
    total = len(report.findings)
    wanted = [f for f in report.findings if f.path == "svc7/app.env"]
    with Session() as browser:
        browser.open(page)
        assert browser.evaluate("document.querySelectorAll('#findings tr[data-s]').length") == total
        assert browser.evaluate("document.getElementById('shown').textContent") == f"{total} shown"
        # Filter: the matching rows, and only they, are shown, packed into the first table.
        browser.evaluate("(q => { q.value = 'svc7/app.env'; q.dispatchEvent(new Event('input')); })"
                         "(document.getElementById('q'))")
        browser.evaluate("new Promise(done => setTimeout(done, 400))")  # the filter waits for typing to pause
        assert browser.evaluate("document.getElementById('shown').textContent") == f"{len(wanted)} of {total} shown"
        shown = browser.evaluate(f"{_VISIBLE}.map(r => r.cells[4].textContent)")
        assert shown == ["svc7/app.env:1"] * len(wanted)
        assert browser.evaluate("Array.from(document.querySelectorAll('#findings .chunk')).map(c => c.hidden)") == [
            False, True, True]
        # Printed, the filter does not apply: every row and table is laid out.
        browser.call("Emulation.setEmulatedMedia", {"media": "print"})
        assert browser.evaluate(f"{_VISIBLE}.length") == total
        browser.call("Emulation.setEmulatedMedia", {"media": ""})
        # Sort by date (ascending, then descending) with the filter cleared: one order over all tables.
        browser.evaluate("(q => { q.value = ''; q.dispatchEvent(new Event('input')); })(document.getElementById('q'))")
        browser.evaluate("new Promise(done => setTimeout(done, 400))")
        dates = sorted(f.commit.date[:10] for f in report.findings if f.commit)
        for direction in (dates, dates[::-1]):
            browser.evaluate("document.querySelector('#findings th:nth-child(8) button').click()")
            assert browser.evaluate(f"{_VISIBLE}.map(r => r.cells[7].textContent)") == direction
        assert browser.evaluate("document.querySelectorAll('#findings .chunk:not([hidden])').length") == 3


def test_large_report_without_javascript_shows_all_rows(large_page: tuple[Path, ScanReport]) -> None:
    with Session(script=False) as browser:
        browser.open(large_page[0])
        assert browser.evaluate("document.documentElement.dataset.js") is None  # the page's script did not run
        assert browser.evaluate("document.getElementById('controls').hidden") is True
        assert browser.evaluate("document.querySelectorAll('#findings tr[data-s]:not([hidden])').length") == len(
            large_page[1].findings)
        # Off screen, the last table's rows are skipped (content-visibility) and its placeholder
        # height is the r4 class's (200 rows); scrolled to and drawn (a screenshot makes a frame),
        # they are laid out, scripting off.
        last = "document.querySelector('#findings .chunk.last')"
        drawn = f"{last}.querySelector('tr[data-s]').checkVisibility({{contentVisibilityAuto: true}})"
        assert browser.evaluate(f"{last}.getBoundingClientRect().height") == 4 * 1500
        assert browser.evaluate(drawn) is False
        browser.evaluate(f"{last}.scrollIntoView()")
        browser.call("Page.captureScreenshot", {"format": "png"})
        assert browser.evaluate(drawn) is True


# --- Hostile input, as an outsider would write it -----------------------------------------------

BIDI = "\u202e\u2066\u2069\u202a\u200f"
HOSTILE = "</script><script>document.title='pwned'</script><!-- \"' javascript:alert(1) \u202egnp.exe\u202c"


def test_hostile_repository_report(tmp_path: Path, keys: KeySet) -> None:
    """Paths, author, subject and remote made by an attacker, the found values written into the
    subject (scanned too) and a path, --show-secrets: the page shows the text as
    text, runs only its own script, and holds no secret, no token, no bidirectional override."""
    other = KeySet.generate()
    token = "ghp" + other.secret.replace("/", "x").replace("+", "y")  # a token as the URL's user name
    repo = GitRepo(tmp_path / "checkout")
    repo.git("remote", "add", "origin", f"https://{token}@github.com/acme/app.git")
    deep = "/".join(c * 200 for c in "pqrst")  # a path over MAX_TEXT characters, on every row it is on
    repo.write(f"a{BIDI}<b>/evil{HOSTILE}{keys.key_id}.env",
               keys.fill("AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\n"))
    repo.write(f"{deep}/x.env", other.fill("aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"))
    repo.git("add", "-A")
    message = tmp_path / "message"
    message.write_text(f"add {keys.key_id} {keys.secret} {other.secret} {HOSTILE} " + "A" * 300_000)
    repo.git("commit", "-q", "-F", str(message), f"--author=Mallory {HOSTILE} {keys.secret} <m@example.com>")
    page = tmp_path / "report.html"
    result = run_keysweep("scan", "--no-progress", "--show-secrets", "--format", "html", "-o", page, repo.path)
    assert result.returncode == 1, result.stderr
    html = page.read_text(encoding="utf-8")
    found = run_keysweep("scan", "--no-progress", "--format", "json", repo.path).json()["findings"]
    assert len(_rows(html)) == len(found) >= 4
    for key in (keys, other):
        assert key.secret not in html and key.key_id[:9] not in html and key.key_id[:8] in html
    assert token not in html and token[:12] not in html
    assert not any(char in html for char in BIDI + "\u202c") and "\\u202egnp.exe\\u202c" in html
    assert html.count("<script") == 1 and "<!--" not in html and "<b>/evil" not in html and "&lt;b&gt;/evil" in html
    assert "&lt;/script&gt;&lt;script&gt;document.title=&#39;pwned&#39;" in html
    assert f'href="https://github.com/acme/app/commit/{repo.git("rev-parse", "HEAD")}"' in html
    assert f"\u2026 ({len(deep) + len('/x.env')} characters)" in html and "p" * 200 + "/" + "q" * 200 in html  # cut
    assert len(html) < 60_000  # the 300,000-character subject is not repeated per row
    with Session() as browser:
        browser.open(page)
        assert browser.evaluate("document.title").startswith("keysweep audit report")
        assert browser.evaluate("document.documentElement.dataset.js") == "on"
        assert browser.evaluate("document.querySelectorAll('script').length") == 1
        assert browser.evaluate("document.querySelectorAll('#findings tr[data-s]').length") == len(found)


def test_credentials_and_values_in_what_the_caller_passes_are_not_shown(keys: KeySet) -> None:
    """Targets, repository names and errors come from the caller (audit: URLs): a URL's user
    and password are dropped, a found value redacted, whatever the caller did."""
    token = "tok" + keys.secret.replace("/", "x").replace("+", "y")
    url = f"https://{token}@github.com/acme/app.git"
    finding = Finding("aws-secret-access-key", Secret("secret", keys.secret), "app.env", 1, 1, "file", "f1",
                      repository=url)
    report = ScanReport((finding,), (), (f"warning: {keys.secret}",), 1, 0, 0, 10, 0.1, url,
                        errors=(f"https://user:{token}@gitlab.com/x.git: could not read",))
    context = HtmlContext(targets=(url, f"/srv/{keys.secret}"), web_remotes={url: "https://github.com/acme/app"},
                          repository_errors=(f"ssh://git:{token}@host/x.git: clone failed", ))
    html = render_html(report, load_ruleset([]), context)
    assert token not in html and keys.secret not in html
    assert "https://github.com/acme/app.git" in html and "ssh://host/x.git: clone failed" in html


def test_empty_report_opens(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("nothing here\n")
    page = tmp_path / "out.html"
    result = run_keysweep("scan", "--no-progress", "--format", "html", "--output", page, tmp_path / "src")
    assert result.returncode == 0 and result.stdout == "", result.stderr
    html = page.read_text(encoding="utf-8")
    assert 'data-count="total">0<' in html and "No findings." in html and not _rows(html)
    with Session() as browser:
        browser.open(page)
        assert browser.evaluate("document.getElementById('shown').textContent") == "0 shown"
    missing = run_keysweep("scan", "--no-progress", "--format", "html", "-o", tmp_path / "no" / "r.html",
                           tmp_path / "src")
    assert missing.returncode == 2 and "cannot write" in missing.stderr and "Traceback" not in missing.stderr
