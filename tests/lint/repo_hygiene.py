#!/usr/bin/env python3
"""The repository explains itself: no tracked file points outside it, committed results and docs
carry no machine paths, and every relative link in a Markdown file resolves inside the checkout.

usage: repo_hygiene.py [ROOT]        checks ROOT (default: this checkout); exit 1 on findings
       repo_hygiene.py --self-test   proves each check fires on a scratch repository
"""
import os
import re
import subprocess
import sys
import tempfile

# Written so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + r"\b")
SPEC_CITE = re.compile("SPEC" + r"\s*§")
# A home, a build machine's checkout or root's home: never in docs, READMEs or results.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home)/[A-Za-z]")
# Generated results are also checked for scratch paths.
SCRATCH_PATH = re.compile(r"(?<![\w.])/tmp/[A-Za-z]")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked(root):
    r = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, text=True)
    if r.returncode == 0:
        return [p for p in r.stdout.split("\0") if p and os.path.isfile(os.path.join(root, p))]
    out = []  # not a checkout (a source tarball): every file but build trees
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in (".git", "build")]
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return out


def is_results(path):
    return path.startswith("bench/RESULTS") or path.startswith("docs/")


def check(root):
    findings = []
    root = os.path.abspath(root)
    for path in sorted(tracked(root)):
        try:
            text = open(os.path.join(root, path), encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue  # binary
        for n, line in enumerate(text.splitlines(), 1):
            where = f"{path}:{n}"
            if OUTSIDE.search(line):
                findings.append(f"{where}: points outside the repository: {line.strip()[:120]}")
            if SPEC_CITE.search(line):
                findings.append(f"{where}: cites a document readers cannot open (cite an RFC or "
                                f"the project's docs): {line.strip()[:120]}")
            if path.endswith(".md") or is_results(path):
                if MACHINE_PATH.search(line) or (is_results(path) and SCRATCH_PATH.search(line)):
                    findings.append(f"{where}: absolute machine path: {line.strip()[:120]}")
            if path.endswith(".md"):
                for target in MD_LINK.findall(line):
                    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                        continue  # URL or in-page anchor
                    rel = target.split("#", 1)[0]
                    full = os.path.normpath(os.path.join(root, os.path.dirname(path), rel))
                    if not (full + "/").startswith(root + "/"):
                        findings.append(f"{where}: link leaves the repository: {target}")
                    elif not os.path.exists(full):
                        findings.append(f"{where}: dead link: {target}")
    return findings


def self_test():
    with tempfile.TemporaryDirectory() as d:
        git = lambda *a: subprocess.run(["git", "-C", d] + list(a), check=True,
                                        capture_output=True)
        git("init", "-q")
        os.makedirs(os.path.join(d, "bench"))
        files = {
            "a.hpp": "/// See ../" + "shared/design/X.md\n",
            "b.cpp": "// " + "SPEC" + " §2.3\n",
            "bench/RESULTS.md": "binary [/tmp/fresh/build/x]\n",
            "README.md": "built in /work/main/build\n[gone](docs/missing.md) [ok](a.hpp)\n"
                         "[out](../../etc/passwd)\n",
            "clean.md": "fine: `--spaces-file /tmp/spaces.json`, https://example.com/work/x\n",
        }
        for name, body in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(body)
        git("add", "-A")
        got = "\n".join(check(d))
        want = ["a.hpp:1: points outside", "b.cpp:1: cites", "bench/RESULTS.md:1: absolute",
                "README.md:1: absolute", "README.md:2: dead link: docs/missing.md",
                "README.md:3: link leaves the repository"]
        missing = [w for w in want if w not in got]
        extra = [line for line in got.splitlines() if "clean.md" in line or "[ok]" in line]
        if missing or extra or len(got.splitlines()) != len(want):
            print(f"self-test failed: missing {missing}, unexpected {extra}\n{got}")
            return 1
        print(f"self-test: all {len(want)} kinds of finding reported, the clean file passes")
        return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    findings = check(root)
    for f in findings:
        print(f)
    if findings:
        print(f"repo_hygiene: {len(findings)} finding(s)")
        return 1
    print("repo_hygiene: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
