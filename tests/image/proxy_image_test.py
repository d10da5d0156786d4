#!/usr/bin/env python3
"""The proxy image's build, as far as a machine without a Docker engine can take it.

1. The build context: the source tree filtered by .dockerignore with Docker's pattern rules
   (`**`, `*`, `?`, `!` exceptions; a pattern matching a directory excludes what is under it) is
   copied into a fresh directory. No build tree, CMake cache, VCS state or node_modules may be in
   it, while everything the build reads is.
2. The build stage of docker/Dockerfile.proxy runs from that clean copy: its WORKDIR, `COPY . .`
   and RUN commands, the stage's output directory (/out) mapped into the work directory.
3. The final stage is assembled the way its COPY --from lines say, into a root file system; its
   size is reported and must stay under 20 MB. When run as root the ENTRYPOINT is started inside
   that root (chroot, as the image's USER) to prove the binary finds everything it loads there.

Usage: proxy_image_test.py SOURCE_DIR WORK_DIR
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

LIMIT_BYTES = 20 * 1000 * 1000
OUT = "/out"


def fail(message):
    print(f"proxy_image: FAIL: {message}", flush=True)
    sys.exit(1)


def pattern_regex(pattern):
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over '/'-paths."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # `**/`: zero or more whole directories
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out += re.escape(c)
            else:
                body = pattern[i + 1:j]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def read_dockerignore(path):
    rules = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/")
            rules.append((negate, pattern_regex(line)))
    return rules


def excluded(rel, rules):
    """Docker's rule: the last matching pattern wins; a path also matches through its parents."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negate, rx in rules:
        if any(rx.match(p) for p in prefixes):
            result = not negate
    return result


def build_context(src, rules):
    """Relative paths of the files `docker build` would send."""
    files, dropped = [], []
    for root, dirs, names in os.walk(src):
        rel_root = os.path.relpath(root, src)
        for n in names:
            rel = n if rel_root == "." else f"{rel_root}/{n}"
            (dropped if excluded(rel, rules) else files).append(rel)
    return sorted(files), dropped


def stages(dockerfile):
    """[(name, [(instruction, argument)])] of a Dockerfile (continuation lines joined)."""
    text = open(dockerfile, encoding="utf-8").read().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            words = arg.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            out.append((name, [("FROM", words[0])]))
        else:
            out[-1][1].append((instr, arg.strip()))
    return out


def dir_bytes(root):
    total = 0
    for r, _, names in os.walk(root):
        for n in names:
            p = os.path.join(r, n)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def check_matcher():
    """The pattern rules this check relies on, on paths whose fate Docker documents."""
    rules = [(False, pattern_regex(p)) for p in ("build", "**/CMakeCache.txt", "*.swp")]
    rules.append((True, pattern_regex("keep.swp")))
    cases = {"build/asan/CMakeCache.txt": True, "CMakeCache.txt": True,
             "a/b/CMakeCache.txt": True, "x.swp": True, "keep.swp": False, "d/x.swp": False,
             "buildx/f": False, "proxy/build/f": False, "proxy/main.cpp": False}
    for path, want in cases.items():
        if excluded(path, rules) != want:
            fail(f"pattern matcher: {path} excluded={not want}, Docker says {want}")
    if excluded("build/asan/CMakeCache.txt", []):
        fail("pattern matcher: excludes without a pattern")


def main():
    src, work = map(os.path.abspath, sys.argv[1:3])
    check_matcher()
    rules = read_dockerignore(os.path.join(src, ".dockerignore"))

    # 1. The context.
    files, dropped = build_context(src, rules)
    leaked = [f for f in files if re.search(
        r"(^|/)(CMakeCache\.txt|CMakeFiles|node_modules|\.git)(/|$)|^build[^/]*/", f)]
    if leaked:
        fail(f".dockerignore lets build or VCS state into the context: {leaked[:5]}")
    for needed in ("CMakeLists.txt", "scripts/docker-build", "scripts/setup-deps",
                   "proxy/main.cpp", "docker/Dockerfile.proxy"):
        if needed not in files:
            fail(f"{needed} is not in the build context")
    caches = [d for d in dropped if d.endswith("CMakeCache.txt")]
    print(f"proxy_image: context {len(files)} files; .dockerignore left out {len(dropped)} "
          f"({len(caches)} CMakeCache.txt)", flush=True)

    shutil.rmtree(work, ignore_errors=True)
    context = os.path.join(work, "context")
    for rel in files:
        dst = os.path.join(context, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), dst, follow_symlinks=False)

    # 2. The build stage, from the clean copy.
    plan = stages(os.path.join(src, "docker", "Dockerfile.proxy"))
    build = dict(plan)["build"]
    out = os.path.join(work, "out")
    cwd = context
    env = dict(os.environ)
    for instr, arg in build:
        if instr == "FROM":
            continue
        if instr == "WORKDIR":
            continue  # the context copy stands for the stage's WORKDIR
        if instr == "COPY":
            if arg.split() != [".", "."]:
                fail(f"build stage COPY {arg}: only `COPY . .` is understood here")
            continue
        if instr == "ENV":
            key, _, value = arg.partition("=")
            env[key.strip()] = value.strip()
            continue
        if instr == "RUN":
            words = [out + w[len(OUT):] if w == OUT or w.startswith(OUT + "/") else w
                     for w in shlex.split(arg)]
            print("proxy_image: RUN " + shlex.join(words), flush=True)
            res = subprocess.run(words, cwd=cwd, env=env)
            if res.returncode != 0:
                fail(f"RUN {arg} exited {res.returncode}")
            continue
        fail(f"build stage instruction {instr} is not understood here")

    # 3. The final stage.
    final = plan[-1][1]
    if final[0] != ("FROM", "scratch"):
        fail(f"the proxy image is expected on an empty base, not {final[0][1]}")
    rootfs = os.path.join(work, "rootfs")
    os.makedirs(rootfs)
    user, entrypoint = None, None
    for instr, arg in final[1:]:
        if instr == "COPY":
            words = arg.split()
            if words[0] != "--from=build" or len(words) != 3:
                fail(f"final stage COPY {arg}: only COPY --from=build SRC DST is understood")
            frm = out + words[1][len(OUT):] if words[1].startswith(OUT) else None
            if frm is None:
                fail(f"final stage copies {words[1]}, which the build stage did not write")
            shutil.copytree(frm, os.path.join(rootfs, words[2].lstrip("/")), symlinks=True,
                            dirs_exist_ok=True)
        elif instr == "USER":
            user = arg
        elif instr == "ENTRYPOINT":
            import json
            entrypoint = json.loads(arg)
    if not entrypoint:
        fail("the final stage has no ENTRYPOINT")
    binary = os.path.join(rootfs, entrypoint[0].lstrip("/"))
    if not os.access(binary, os.X_OK):
        fail(f"ENTRYPOINT {entrypoint[0]} is not an executable in the image")
    uid = (user or "0").split(":")[0]
    with open(os.path.join(rootfs, "etc", "passwd"), encoding="utf-8") as f:
        if not any(line.split(":")[2] == uid for line in f if line.count(":") >= 6):
            fail(f"USER {user} has no /etc/passwd entry in the image")
    if not os.path.isfile(os.path.join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt")):
        fail("the image has no CA bundle (/etc/ssl/certs/ca-certificates.crt)")

    size = dir_bytes(rootfs)
    print(f"proxy_image: image file system {size / 1e6:.1f} MB (binary "
          f"{os.path.getsize(binary) / 1e6:.1f} MB) in {rootfs}", flush=True)
    for r, _, names in sorted(os.walk(rootfs)):
        for n in sorted(names):
            p = os.path.join(r, n)
            if not os.path.islink(p) and os.path.getsize(p) > 500000:
                print(f"proxy_image:   {os.path.getsize(p) / 1e6:5.1f} MB "
                      f"/{os.path.relpath(p, rootfs)}", flush=True)
    if size > LIMIT_BYTES:
        fail(f"the proxy image would be {size / 1e6:.1f} MB, over {LIMIT_BYTES / 1e6:.0f} MB")

    if os.geteuid() == 0:
        # Inside the image's root file system only, as the image's user: the loader and every
        # library the binary needs are there.
        res = subprocess.run(["chroot", f"--userspec={user or '0:0'}", rootfs, entrypoint[0],
                              "--version"], capture_output=True, text=True, timeout=30)
        if res.returncode != 0 or "devspaces-proxy" not in res.stdout:
            fail(f"{entrypoint[0]} --version in the image's root: exit {res.returncode}: "
                 f"{res.stdout}{res.stderr}")
        print(f"proxy_image: in the image's root as {user}: {res.stdout.strip()}", flush=True)
    else:
        print("proxy_image: not root, the chroot start is skipped", flush=True)
    print("proxy_image: OK", flush=True)


if __name__ == "__main__":
    main()
