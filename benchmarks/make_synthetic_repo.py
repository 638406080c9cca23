"""Generate a synthetic git history for benchmarks: thousands of commits, hundreds of MB of
realistic text (code, config, JSON, docs), and AWS keys planted at known places.

    python benchmarks/make_synthetic_repo.py /tmp/synth --commits 4000 --megabytes 300

Writes the repository with ``git fast-import`` and a ``planted.json`` beside it listing every
planted key (for measuring recall). Keys are generated here, at run time.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.keygen import KeySet  # noqa: E402

WORDS = (
    "request response client server config bucket region account policy role session token "
    "handler service deploy build cache queue worker event stream record table index schema "
    "user group permission resource instance cluster node volume snapshot image network route"
).split()


def _line(rng: random.Random, kind: str) -> str:
    words = rng.sample(WORDS, 4)
    if kind == "py":
        return rng.choice([
            f"    {words[0]}_{words[1]} = {words[2]}.get_{words[3]}(timeout={rng.randint(1, 90)})",
            f"def {words[0]}_{words[1]}({words[2]}, {words[3]}=None):",
            f"    # {' '.join(rng.sample(WORDS, 8))}",
            f"    return {{'{words[0]}': {words[1]}, 'id': '{rng.getrandbits(128):032x}'}}",
        ])
    if kind == "json":
        return f'  "{words[0]}{words[1].title()}": {{"{words[2]}": "{rng.getrandbits(64):x}", "count": {rng.randint(0, 10**6)}}},'
    if kind == "yaml":
        return f"{words[0]}_{words[1]}:\n  {words[2]}: {words[3]}-{rng.randint(1, 999)}"
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + "."


def _file(rng: random.Random, kind: str, size: int) -> str:
    lines = []
    total = 0
    while total < size:
        line = _line(rng, kind)
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def generate(path: Path, commits: int, megabytes: int, keys: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    per_commit = megabytes * 1024 * 1024 // commits
    files = [f"src/pkg{i % 40}/module{i}.{rng.choice(['py', 'json', 'yaml', 'md'])}" for i in range(800)]
    plant_at = set(rng.sample(range(1, commits), min(keys, commits - 1)))
    planted: list[dict[str, object]] = []
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = proc.stdin
    for n in range(commits):
        changed = rng.sample(files, rng.randint(1, 4))
        out.write(f"commit refs/heads/main\nmark :{n + 1}\n".encode())
        stamp = 1_600_000_000 + n * 600
        out.write(f"author Bench <bench@example.com> {stamp} +0000\ncommitter Bench <bench@example.com> {stamp} +0000\n".encode())
        message = f"change {n}: {' '.join(rng.sample(WORDS, 5))}".encode()
        out.write(b"data %d\n%s\n" % (len(message), message))
        if n:
            out.write(f"from :{n}\n".encode())
        for index, name in enumerate(changed):
            kind = name.rsplit(".", 1)[1]
            text = _file(rng, kind, per_commit // len(changed))
            if n in plant_at and index == 0:
                ks = KeySet.generate()
                lines = text.split("\n")
                at = rng.randrange(len(lines))
                lines[at:at] = [f"AWS_ACCESS_KEY_ID={ks.key_id}", f"AWS_SECRET_ACCESS_KEY={ks.secret}"]
                text = "\n".join(lines)
                planted.append({"commit_index": n, "path": name, "line": at + 1, "key_id": ks.key_id, "secret": ks.secret})
            data = text.encode()
            out.write(f"M 100644 inline {name}\n".encode())
            out.write(b"data %d\n%s\n" % (len(data), data))
        out.write(b"\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "main"], check=True)
    (path.parent / f"{path.name}.planted.json").write_text(json.dumps(planted, indent=1))
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.path.exists():
        raise SystemExit(f"{args.path} exists; choose a new folder")
    planted = generate(args.path, args.commits, args.megabytes, args.keys, args.seed)
    print(f"{args.path}: {args.commits} commits, {len(planted)} planted key pairs")


if __name__ == "__main__":
    main()
