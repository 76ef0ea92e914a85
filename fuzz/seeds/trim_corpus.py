#!/usr/bin/env python3
"""Keeps at most N files of a fuzz corpus, chosen greedily for coverage.

Usage: python3 fuzz/seeds/trim_corpus.py TARGET [N=200] [EXTRA_DIR...]

Run `cargo fuzz cmin -s none TARGET` first. libFuzzer's merge keeps every file that adds a
feature, which can still be thousands; this script asks the (already built) fuzz binary for the
full coverage of each file (`-set_cover_merge=1 -merge_control_file=...`; plain `-merge=1` records
only what each file adds to the files before it), then keeps the N files that cover the
most: greedy maximum coverage on code edges first, then on libFuzzer features (hit counts), smaller
files first on ties. EXTRA_DIRs (e.g. an older corpus) join the candidates; chosen files from them are
copied in. Everything else in fuzz/corpus/TARGET is deleted. Prints the coverage kept.
"""
import hashlib
import heapq
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parents[1]
target = sys.argv[1]
budget = int(sys.argv[2]) if len(sys.argv) > 2 else 200
extra = [pathlib.Path(d) for d in sys.argv[3:]]
corpus = FUZZ / "corpus" / target
binary = FUZZ / "target" / "x86_64-unknown-linux-gnu" / "release" / target

with tempfile.TemporaryDirectory() as tmp:
    control = pathlib.Path(tmp) / "control"
    scratch = pathlib.Path(tmp) / "scratch"
    scratch.mkdir()
    run = subprocess.run(
        ["nice", "-n", "19", str(binary), "-set_cover_merge=1", f"-merge_control_file={control}",
         str(scratch), str(corpus), *map(str, extra)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines = control.read_text().splitlines()

# Features below 8 * (number of inline 8-bit counters) are "edge index * 8 + hit-count bucket";
# the rest (stack depth, ...) have no edge.
counters = int(re.search(r"\((\d+) inline 8-bit counters\)", run.stderr).group(1))

n_files = int(lines[0])
paths = [pathlib.Path(p) for p in lines[2:2 + n_files]]
features, edges, sizes = {}, {}, {}
for line in lines[2 + n_files:]:
    parts = line.split()
    if parts[0] == "STARTED":
        sizes[int(parts[1])] = int(parts[2])
    elif parts[0] == "FT":
        features[int(parts[1])] = set(map(int, parts[2:]))
        edges[int(parts[1])] = {f // 8 for f in features[int(parts[1])] if f < 8 * counters}

all_edges = set().union(*edges.values()) if edges else set()
all_features = set().union(*features.values()) if features else set()
got_edges, got_features, keep = set(), set(), []


def gain(i):
    # FT lines are complete per file (COV lines list only edges new to the merge so far).
    return (len(edges.get(i, set()) - got_edges), len(features.get(i, set()) - got_features))


# Lazy greedy: gains only shrink, so a stale heap entry is an upper bound.
heap = [(-e, -f, sizes.get(i, 0), i) for i, (e, f) in ((i, gain(i)) for i in features)]
heapq.heapify(heap)
while heap and len(keep) < budget:
    _, _, size, i = heapq.heappop(heap)
    e, f = gain(i)
    if (e, f) == (0, 0):
        continue
    if heap and (-e, -f, size) > heap[0][:3]:
        heapq.heappush(heap, (-e, -f, size, i))
        continue
    keep.append(i)
    got_edges |= edges.get(i, set())
    got_features |= features.get(i, set())

kept_names = set()
for i in keep:
    src = paths[i]
    data = src.read_bytes()
    name = hashlib.sha1(data).hexdigest()
    kept_names.add(name)
    if src.parent != corpus or src.name != name:
        (corpus / name).write_bytes(data)
removed = 0
for p in list(corpus.iterdir()):
    if p.name not in kept_names:
        p.unlink()
        removed += 1
print(f"{target}: kept {len(keep)} files (removed {removed}); edges {len(got_edges)}/{len(all_edges)}, "
      f"features {len(got_features)}/{len(all_features)}")
