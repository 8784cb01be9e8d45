"""Loaded by Python at start-up when this directory is on PYTHONPATH (bench/soak.py --probe or
--arenas), in the server process only:

- with $LIVEBLOG_TRACEMALLOC_DIR, SIGUSR1 writes a tracemalloc snapshot there (start the process
  with PYTHONTRACEMALLOC=1 so that allocations are traced from the start);
- with $LIVEBLOG_MALLOCSTATS_DIR, SIGUSR2 writes `sys._debugmallocstats()` there (pymalloc's
  arenas, pools and blocks by size class) and the collector's counts, without tracemalloc, which
  changes what it measures; and SIGURG (sent by hand: `kill -URG <server pid>`, a diagnosis that
  holds the server for some seconds) writes a census there as garbage-*.json: the cyclic garbage
  waiting for the collector, by type, then every object reachable from the collector's roots by
  type, and, from the second call on, what grew since the one before and who holds the new
  strings and tuples (docs/performance.md, "Soak: closed connections waiting for the collector").

A handler's failure is printed, never raised into the server's code."""

import gc
import os
import signal
import sys
import time
import tracemalloc


def _dump(signum, frame):  # type: ignore[no-untyped-def]
    if not tracemalloc.is_tracing():
        return
    gc.collect()
    path = os.path.join(
        os.environ.get("LIVEBLOG_TRACEMALLOC_DIR", "."), f"snapshot-{time.monotonic():.0f}.pickle"
    )
    tracemalloc.take_snapshot().dump(path)


def _printing_failures(write):  # type: ignore[no-untyped-def]
    """A signal handler that runs `write()` and prints its failure, never raising it into the server."""

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        try:
            write()
        except Exception:
            import traceback

            traceback.print_exc()

    return handler


def _write_mallocstats():  # type: ignore[no-untyped-def]
    # _debugmallocstats writes to C's stderr: point fd 2 at a file for the call. No gc.collect()
    # here: the sample shows the arenas as the server holds them between collections.
    directory = os.environ["LIVEBLOG_MALLOCSTATS_DIR"]
    tmp = os.path.join(directory, f"mallocstats-{time.monotonic_ns()}.tmp")
    saved = os.dup(2)
    try:
        with open(tmp, "w") as fh:
            sys.stderr.flush()
            os.dup2(fh.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
            # And the cyclic collector's state: full collections so far, objects it tracks.
            for generation, stats in enumerate(gc.get_stats()):
                fh.write(f"# gc generation {generation} collections = {stats['collections']}\n")
            fh.write(f"# gc objects tracked = {len(gc.get_objects())}\n")
            fh.write(f"# gc objects frozen = {gc.get_freeze_count()}\n")
    finally:
        os.close(saved)
    os.rename(tmp, tmp[: -len(".tmp")] + ".txt")  # complete when it appears


if os.environ.get("LIVEBLOG_TRACEMALLOC_DIR"):
    signal.signal(signal.SIGUSR1, _dump)
if os.environ.get("LIVEBLOG_MALLOCSTATS_DIR"):
    signal.signal(signal.SIGUSR2, _printing_failures(_write_mallocstats))


_last_census: dict = {}


def _name(o):  # type: ignore[no-untyped-def]
    t = type(o)
    return f"{t.__dict__.get('__module__', getattr(t, '__module__', '?'))!s}.{t.__qualname__}"


def _describe(o):  # type: ignore[no-untyped-def]
    if isinstance(o, dict):
        keys = [k for k in list(o)[:8] if isinstance(k, str)]
        return "dict(" + ",".join(keys) + ")"
    return _name(o)


def _garbage_report():  # type: ignore[no-untyped-def]
    # Diagnosis: what the cyclic collector would free now (collected with DEBUG_SAVEALL, counted
    # by type), then the live objects by type, and the containers that grew since the last call
    # (with what refers to them).
    import json
    from collections import Counter, deque

    stats = {"stats": gc.get_stats(), "count": gc.get_count()}
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        found = gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    types = Counter(type(o).__qualname__ for o in garbage)
    del garbage
    gc.collect()
    objects = gc.get_objects()
    live = Counter(_name(o) for o in objects)
    sizes = {}
    for o in objects:
        if type(o) in (dict, list, set, deque) or isinstance(o, (dict, set, deque)):
            sizes[id(o)] = (type(o).__qualname__, len(o))
    global _last_census
    grown = []
    if _last_census:
        before = _last_census["sizes"]
        for o in objects:
            key = id(o)
            if key in sizes:
                t, n = sizes[key]
                old = before.get(key)
                n0 = old[1] if old and old[0] == t else 0
                if n - n0 >= 20:
                    grown.append((n - n0, o))
        grown.sort(key=lambda x: -x[0])
        report = []
        for delta, o in grown[:15]:
            owners = [_describe(r) for r in gc.get_referrers(o) if r is not objects][:4]
            sample = repr(list(o)[:3] if not isinstance(o, dict) else list(o.items())[:2])[:300]
            report.append([delta, len(o), _describe(o), owners, sample])
        grown = report
        live_diff = {k: live[k] - _last_census["live"].get(k, 0) for k in live}
        stats["live_growth"] = sorted(live_diff.items(), key=lambda kv: -kv[1])[:30]
    # Everything reachable from the tracked objects, untracked ones (str, int, bytes, atomic
    # tuples and dicts) included, by type: count and bytes. This census's own records are left
    # out; the strings and tuples new since the last call are shown with their owners.
    own = {id(_last_census), id(objects), *(id(v) for v in _last_census.values())}
    objects = [o for o in objects if id(o) not in own]
    seen = {id(o) for o in objects} | own
    reach_count = Counter()
    reach_bytes = Counter()
    parent = {}
    new_atoms = []
    old_atoms = _last_census.get("atoms", set())
    atoms = set()
    stack = list(objects)
    for o in objects:
        n = _name(o)
        reach_count[n] += 1
        reach_bytes[n] += sys.getsizeof(o, 0)
    while stack:
        o = stack.pop()
        for r in gc.get_referents(o):
            if id(r) not in seen:
                seen.add(id(r))
                if not gc.is_tracked(r):
                    n = _name(r)
                    reach_count[n] += 1
                    reach_bytes[n] += sys.getsizeof(r, 0)
                    stack.append(r)
                    parent[id(r)] = o
                    if type(r) in (str, tuple, int):
                        atoms.add(id(r))
                        if _last_census and id(r) not in old_atoms and len(new_atoms) < 4000:
                            new_atoms.append(r)
    del seen, stack
    if _last_census:
        before_c, before_b = _last_census["reach_count"], _last_census["reach_bytes"]
        stats["reach_growth"] = sorted(
            (
                (k, reach_count[k] - before_c.get(k, 0), reach_bytes[k] - before_b.get(k, 0))
                for k in reach_bytes
            ),
            key=lambda x: -x[2],
        )[:25]
        owners = Counter()
        examples = {}
        for r in new_atoms:
            chain = []
            o = r
            while id(o) in parent and len(chain) < 6:
                o = parent[id(o)]
                chain.append(_describe(o))
            key = " <- ".join(chain)
            owners[key] += 1
            examples.setdefault(key, repr(r)[:100])
        stats["new_atom_owners"] = [(k, n, examples[k]) for k, n in owners.most_common(25)]
    del parent, new_atoms
    stats["reach_total"] = [sum(reach_count.values()), sum(reach_bytes.values())]
    stats.update(found=found, types=types.most_common(40), live=live.most_common(30), grown=grown)
    _last_census = {
        "sizes": sizes,
        "live": live,
        "reach_count": reach_count,
        "reach_bytes": reach_bytes,
        "atoms": atoms,
    }
    del objects
    directory = os.environ["LIVEBLOG_MALLOCSTATS_DIR"]
    tmp = os.path.join(directory, f"garbage-{time.monotonic_ns()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(stats, fh, indent=1, default=repr)
    os.rename(tmp, tmp[: -len(".tmp")] + ".json")


if os.environ.get("LIVEBLOG_MALLOCSTATS_DIR"):
    signal.signal(signal.SIGURG, _printing_failures(_garbage_report))
