"""The detector alone over a sample of a repository's history, split into its parts:

    python benchmarks/engine_sample.py REPO [--every 10]

Reads every N-th blob, commit and tag (git's own order) into memory, then times, in CPU
seconds: the native pass (Hyperscan prefilter), the native base64 runs, and the whole
detector (both engines: the Hyperscan prefilter and pure Python), each per GB of text.
Prints the machine first. Nothing is written.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench import machine  # noqa: E402
from scanner.engine import native  # noqa: E402
from scanner.engine.detect import as_scannable, detect  # noqa: E402
from scanner.engine.rules import load_ruleset  # noqa: E402


def sample(repo: Path, every: int) -> list[bytes]:
    git = ["git", "--git-dir", str(repo)]
    listing = subprocess.run([*git, "cat-file", "--batch-all-objects", "--unordered",
                              "--batch-check=%(objectname) %(objecttype)"], capture_output=True, check=True).stdout
    wanted = [line.split()[0] for index, line in enumerate(listing.splitlines())
              if index % every == 0 and line.split()[1] in (b"blob", b"commit", b"tag")]
    out = subprocess.run([*git, "cat-file", "--batch"], input=b"\n".join(wanted) + b"\n", capture_output=True,
                         check=True).stdout
    texts, position = [], 0
    while position < len(out):
        header_end = out.index(b"\n", position)
        size = int(out[position:header_end].split()[2])
        data = out[header_end + 1 : header_end + 1 + size]
        position = header_end + 2 + size
        text = as_scannable(data)
        if text is not None:
            texts.append(text)
    return texts


def cpu(function: object, texts: list[bytes]) -> float:
    start = time.process_time()
    for text in texts:
        function(text)  # type: ignore[operator]
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo", type=Path)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    for name, value in machine().items():
        print(f"{name:<22}{value}")
    texts = sample(args.repo, args.every)
    gigabytes = sum(map(len, texts)) / 1e9
    print(f"sample                {len(texts)} texts, {gigabytes * 1000:.0f} MB (every {args.every}th object)")
    prefiltered, plain = load_ruleset(), load_ruleset()
    prefilter = native.Prefilter(prefiltered) if native.available() else None
    prefiltered.health.prefilter = prefilter if prefilter is not None else False
    plain.health.prefilter = False
    if prefilter is not None:
        print(f"native pass           {cpu(prefilter.scan, texts) / gigabytes:.2f} CPU-s/GB")
        print(f"native base64 runs    {cpu(prefilter.base64_runs, texts) / gigabytes:.2f} CPU-s/GB")
        print(f"detect (hyperscan)    {cpu(lambda t: detect(t, prefiltered), texts) / gigabytes:.2f} CPU-s/GB")
    print(f"detect (pure Python)  {cpu(lambda t: detect(t, plain), texts) / gigabytes:.2f} CPU-s/GB")


if __name__ == "__main__":
    main()
