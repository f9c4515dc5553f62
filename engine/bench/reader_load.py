"""Many readers at once (a script, and the engine of the concurrency tests): leases, saves, invariants.

    python -m engine.bench.reader_load --images 100000 --readers 20 [--readers-per-case 1] [--labels 40]
        [--think-ms 0] [--db URL] --out docs/results/reader_load_sqlite

Each reader is its own process (spawned, own connection pool) looping: lease the next case
(db.lease_shortcut.serve_next, as the Label page and `queue next` call it; this is the timed step), think, save an answer through
db.reading.answer. Afterwards the store is checked: every image's current label is its newest deciding row
(no lost update), no case was served to two readers in single reading, and under double reading every read
case has exactly `readers_per_case` reads by distinct readers. The baseline in the same run is a primary-key
lookup of one image row on the same database.
"""
from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from db.config import StoreConfig
from db.engine import refresh_statistics, write_session
from db.labels import deciding_label
from db.lease_shortcut import serve_next
from db.leases import release
from db.models import Annotator, CaseLease, Image, Label, Project
from db.project_settings import update as update_settings
from db.reading import answer, reads_of
from db.store import open_store
from db.users import ensure_user
from engine.bench.report import bench_header, write_result


def populate(store, n: int, readers_per_case: int, ranked: bool = True) -> int:
    """A project of n unlabeled train images (ranked by a fake analysis when `ranked`)."""
    from engine.bench.queue_speed import populate as populate_ranked

    project_id, checkpoint_id = populate_ranked(store, n)
    with store.sessions.begin() as session:
        project = session.get(Project, project_id)
        update_settings(session, project, {"readers_per_case": readers_per_case})
        if not ranked:
            from sqlalchemy import update

            from db.models import Checkpoint
            session.execute(update(Checkpoint).where(Checkpoint.id == checkpoint_id).values(is_active=False))
    return project_id


def _reader(db_url: str, home: str, project_id: int, name: str, max_labels: int, think_s: float, seed: int,
            start_at: float, shared=None, warm: bool = False) -> dict[str, Any]:
    """One reader (a process, or a thread of one server process sharing `shared`, the store): lease, think,
    answer, until max_labels or nothing is left. `warm`: one lease taken and given back before the start."""
    from db.results import active_checkpoint_id

    store = shared or open_store(StoreConfig.from_env(home=Path(home), db=db_url), migrate=False)
    rng = np.random.default_rng(seed)
    latencies, errors, served = [], [], []
    loaded_pk: list[float] = []
    with store.sessions.begin() as session:
        user_id = ensure_user(session, name).id
        checkpoint_id = active_checkpoint_id(session, project_id)
    cold = []
    if warm:   # a reader whose Label page is already open: statements compiled, the connection's backend warm
        began = time.perf_counter()
        lease = serve_next(store.sessions, project_id, user_id, checkpoint_id)
        cold.append(time.perf_counter() - began)
        with write_session(store.sessions) as session:
            if lease is not None:
                release(session, lease.image_id, user_id)
    time.sleep(max(0.0, start_at - time.time()))   # every reader starts together…
    time.sleep(think_s * float(rng.uniform(0, 1)))   # …but not in the same millisecond (0 think: a burst)
    while len(served) < max_labels:
        try:
            began = time.perf_counter()
            lease = serve_next(store.sessions, project_id, user_id, checkpoint_id)
            latencies.append(time.perf_counter() - began)
            if lease is None:
                break
            served.append(lease.image_id)
            began = time.perf_counter()   # the floor under the same load: a one-row read transaction
            with store.sessions.begin() as session:
                session.get(Image, lease.image_id - 1)
            loaded_pk.append(time.perf_counter() - began)
            if think_s:   # jittered (0.5-1.5x), so readers do not click in lockstep
                time.sleep(think_s * float(rng.uniform(0.5, 1.5)))
            with write_session(store.sessions) as session:
                project = session.get(Project, project_id)
                user = session.get(Annotator, user_id)
                answer(session, project, session.get(Image, lease.image_id), user,
                       int(rng.integers(len(project.classes))))
        except Exception as error:  # noqa: BLE001 - counted and reported; the invariants decide the test
            errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=3)}")
            if len(errors) > 20:
                break
    if shared is None:
        store.dispose()
    return {"name": name, "latencies": latencies, "errors": errors, "served": served,
            "loaded_pk": loaded_pk, "cold": cold or latencies[:1]}


def run_readers(db_url: str, home: Path, project_id: int, readers: int, max_labels: int, think_ms: float = 0.0,
                prefix: str = "reader", threads: bool = False, warm: bool = False) -> list[dict[str, Any]]:
    """`threads`: the app's shape (every browser session is a thread of the one Streamlit server process,
    sharing its connection pool); else one process per reader (the CLI's shape). `warm`: each reader takes
    and gives back one lease before the common start (a reader with the Label page already open), so the
    timed leases do not include a fresh process's first statement compilation and backend catalog loads;
    those first leases are reported on their own."""
    if threads:
        from concurrent.futures import ThreadPoolExecutor

        shared = open_store(StoreConfig.from_env(home=home, db=db_url), migrate=False)
        start_at = time.time() + 1.0
        with ThreadPoolExecutor(readers) as pool:
            futures = [pool.submit(_reader, db_url, str(home), project_id, f"{prefix}{i}", max_labels,
                                   think_ms / 1000, i, start_at, shared, warm) for i in range(readers)]
            results = [f.result(timeout=1800) for f in futures]
        shared.dispose()
        return results
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0 + 0.6 * readers   # spawned interpreters import on 2 cores before the start
    with context.Pool(readers) as pool:
        jobs = [pool.apply_async(_reader, (db_url, str(home), project_id, f"{prefix}{i}", max_labels,
                                           think_ms / 1000, i, start_at, None, warm)) for i in range(readers)]
        return [job.get(timeout=1800) for job in jobs]


def invariants(store, project_id: int, readers_per_case: int) -> dict[str, Any]:
    """What must hold after any number of concurrent readers (each count must be 0 for a pass)."""
    with store.sessions.begin() as session:
        images = {i.id: i for i in session.scalars(select(Image).where(Image.project_id == project_id))}
        rows: dict[int, list[Label]] = defaultdict(list)
        for row in session.scalars(select(Label).join(Image, Image.id == Label.image_id)
                                   .where(Image.project_id == project_id).order_by(Label.id)):
            rows[row.image_id].append(row)
        slots = Counter(session.scalars(select(CaseLease.image_id).where(CaseLease.project_id == project_id)))
    lost = sum((deciding_label(r).id if deciding_label(r) else None) != images[i].current_label_id
               for i, r in rows.items())
    human = {i: {x.annotator_id for x in r if x.source in ("human", "read") and x.kind != "retract"}
             for i, r in rows.items()}
    result = {"images_answered": len(rows), "labels": sum(len(r) for r in rows.values()),
              "lost_updates": int(lost), "served_twice": 0, "wrong_read_count": 0}
    if readers_per_case == 1:
        result["served_twice"] = sum(len(who) > 1 for who in human.values()) + sum(n > 1 for n in slots.values())
    else:
        reads = {i: reads_of(r) for i, r in rows.items()}
        result["wrong_read_count"] = sum(len(r) != readers_per_case or len({x.reader_id for x in r}) != len(r)
                                         for r in reads.values())
        result["review"] = sum(images[i].label_status == "review" for i in reads)
    return result


def _baseline(store, project_id: int, n: int = 300) -> list[float]:
    with store.sessions.begin() as session:
        ids = list(session.scalars(select(Image.id).where(Image.project_id == project_id).limit(n)))
    times = []
    for image_id in ids:
        began = time.perf_counter()
        with store.sessions.begin() as session:
            session.get(Image, image_id)
        times.append(time.perf_counter() - began)
    return times


def _ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3) if samples else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--readers-per-case", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument("--labels", type=int, default=40, help="answers per reader")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="mean pause between lease and answer (uniform 0.5-1.5x); 0: readers click non-stop")
    parser.add_argument("--threads", action="store_true",
                        help="readers as threads of one process (the app server's shape) instead of processes")
    parser.add_argument("--cold", action="store_true",
                        help="time every reader's first lease too (default: each reader warms up with one lease "
                             "given back before the start; first leases are reported apart either way)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="reader runs one after another on the same store (fresh readers each), so the spread "
                             "of p95 between runs on this shared-CPU machine is seen, not one lucky or unlucky run")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file in a temp folder)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json / results.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db_url = args.db or f"sqlite:///{home / 'medssl.db'}"
        store = open_store(StoreConfig.from_env(home=home, db=db_url))
        began = time.perf_counter()
        project_id = populate(store, args.images, args.readers_per_case)
        populate_s = time.perf_counter() - began
        if db_url.startswith("sqlite"):   # fold the populate's WAL in now, as a running install long has
            with store.sql_engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:   # planner statistics, as the import leaves them (db.engine.refresh_statistics)
            refresh_statistics(store.sql_engine)
        baseline = _baseline(store, project_id)
        began = time.perf_counter()
        repeats = [run_readers(db_url, home, project_id, args.readers, args.labels, args.think_ms,
                               prefix=f"run{k}_reader", threads=args.threads, warm=not args.cold)
                   for k in range(args.repeats)]
        wall = time.perf_counter() - began
        results = [r for run in repeats for r in run]
        checks = invariants(store, project_id, args.readers_per_case)
        store.dispose()
    latencies = [x for r in results for x in r["latencies"]]
    cold = [x for r in results for x in r["cold"]]
    loaded_pk = [x for r in results for x in r["loaded_pk"]]
    errors = [e for r in results for e in r["errors"]]
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    result = {**bench_header("engine.bench.reader_load", argv), "backend": backend, "images": args.images,
              "readers": args.readers, "shape": "threads" if args.threads else "processes",
              "readers_per_case": args.readers_per_case, "think_ms": args.think_ms,
              "next_case_ms": {"p50": _ms(latencies, 50), "p95": _ms(latencies, 95), "p99": _ms(latencies, 99),
                               "n": len(latencies)},
              "repeats": args.repeats,
              "p95_per_repeat_ms": [_ms([x for r in run for x in r["latencies"]], 95) for run in repeats],
              "warm_start": not args.cold,
              "first_lease_ms": {"p50": _ms(cold, 50), "p95": _ms(cold, 95), "n": len(cold)},
              "loaded_pk_lookup_ms": {"p50": _ms(loaded_pk, 50), "p95": _ms(loaded_pk, 95), "n": len(loaded_pk)},
              "baseline_pk_lookup_ms": {"p50": _ms(baseline, 50), "p95": _ms(baseline, 95)},
              "answers": sum(len(r["served"]) for r in results), "wall_s": round(wall, 2),
              "populate_s": round(populate_s, 2), "errors": len(errors), "error_samples": errors[:3], **checks}
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "results.json", result)
    (args.out / "results.md").write_text(markdown(result))
    return 0 if not errors and not checks["lost_updates"] and not checks["served_twice"] else 1


def markdown(r: dict[str, Any]) -> str:
    nc, base, loaded = r["next_case_ms"], r["baseline_pk_lookup_ms"], r["loaded_pk_lookup_ms"]
    return (f"# Next case with lease: {r['backend']}, {r['images']:,} images, {r['readers']} concurrent readers\n\n"
            f"Command: `{r['command']}`  \nMachine: {r['machine']}\n\n"
            "| readers/case | think ms | next case p50 ms | p95 ms | p99 ms | n | p95 per run ms | first lease p95 ms | "
            "PK lookup p95 ms (idle / under load) | answers | errors | lost updates | served twice | "
            "wrong read count |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {r['readers_per_case']} | {r['think_ms']:g} | {nc['p50']} | {nc['p95']} | {nc['p99']} | {nc['n']} | "
            f"{' / '.join(str(x) for x in r.get('p95_per_repeat_ms', []))} | {r['first_lease_ms']['p95']} | {base['p95']} / {loaded['p95']} | {r['answers']} | {r['errors']} | "
            f"{r['lost_updates']} | {r['served_twice']} | {r['wrong_read_count']} |\n\n"
            + ("Each reader took and gave back one lease before the common start (a reader with the Label page "
               "open); those first leases of fresh processes are the 'first lease' column, not in the timed "
               "leases.\n" if r["warm_start"] else "Cold start: every reader's first lease is timed.\n")
            + f"Percentiles pool the {r.get('repeats', 1)} runs of {r['readers']} fresh readers each (one after "
              "another on the same store); 'p95 per run' shows the spread between runs.\n"
            + "PK lookup under load: a one-row read transaction timed by the same readers during the run.\n")


if __name__ == "__main__":
    raise SystemExit(main())
