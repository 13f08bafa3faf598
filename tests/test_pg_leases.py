"""Workers sharing the crawl frontier in PostgreSQL (pipeline/backend/pg/leases.py), each with its own
connections to a real server: SKIP LOCKED claims, one worker per host, renewal, takeover of a
killed worker's expired leases, and a lost lease refusing to finish."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from pipeline.backend.pg.leases import FrontierLeases
from pipeline.backend.pg.store import PgStore

HOSTS = ("a.example", "b.example", "c.example", "d.example")


def seed(store: PgStore, per_host: int = 5) -> list[str]:
    urls = [f"https://{h}/p{i}" for h in HOSTS for i in range(per_host)]
    store.frontier_insert([(u, "src", "page", None) for u in urls])
    return urls


def host(url: str) -> str:
    return url.split("/")[2]


def test_two_workers_claim_disjoint_urls_and_hosts(pg_url: str) -> None:
    s1, s2 = PgStore(pg_url), PgStore(pg_url)
    urls = seed(s1)
    w1 = FrontierLeases(s1, "w1")
    w2 = FrontierLeases(s2, "w2")
    got1 = [r["url"] for r in w1.claim(100, max_hosts=2)]
    got2 = [r["url"] for r in w2.claim(100, max_hosts=8)]
    assert len(got1) == len(got2) == 10  # two hosts each: the first took two, the second the rest
    assert not {host(u) for u in got1} & {host(u) for u in got2}
    assert sorted(got1 + got2) == sorted(urls)
    assert w1.claim(5) == []  # its hosts have nothing left unleased
    assert set(w1.hosts()) == {host(u) for u in got1}
    s1.close()
    s2.close()


def test_finish_needs_a_live_lease_and_release_spaces_the_host(pg_url: str) -> None:
    s1, s2 = PgStore(pg_url), PgStore(pg_url)
    seed(s1, per_host=1)
    w1 = FrontierLeases(s1, "w1", lease_s=60, host_delay_s=30)
    w2 = FrontierLeases(s2, "w2")
    url = w1.claim(1, max_hosts=1)[0]["url"]
    assert not w2.finish(url, status="done")  # not w2's lease
    with s1.atomic():
        assert w1.finish(url, status="done", http_status=200)
    assert s1.frontier_row(url)["status"] == "done"  # type: ignore[index]
    assert w1.release() == 0
    # the released host waits out the politeness delay before any worker asks it again
    assert host(url) not in {host(r["url"]) for r in w2.claim(100)}
    with pytest.raises(ValueError, match="unknown frontier columns"):
        w1.finish(url, nope=1)
    s1.close()
    s2.close()


def test_a_killed_workers_leases_expire_and_are_taken_over(pg_url: str) -> None:
    s1, s2 = PgStore(pg_url), PgStore(pg_url)
    urls = seed(s1, per_host=2)
    dead = FrontierLeases(s1, "dead", lease_s=0.5)
    alive = FrontierLeases(s2, "alive", lease_s=60)
    taken = [r["url"] for r in dead.claim(100)]
    assert sorted(taken) == sorted(urls)
    assert alive.claim(100) == []  # all leased
    s1.close()  # the worker is killed: no renew, no release
    time.sleep(0.8)
    again = [r["url"] for r in alive.claim(100)]
    assert sorted(again) == sorted(urls)
    assert alive.renew() == len(urls)
    # the dead worker's late finish is refused: the URL is the new holder's
    late = FrontierLeases(PgStore(pg_url), "dead")
    assert not late.finish(urls[0], status="done")
    late.store.close()
    s2.close()


def test_many_workers_drain_the_frontier_each_url_once_one_worker_per_host(pg_url: str) -> None:
    setup = PgStore(pg_url)
    urls = seed(setup, per_host=25)
    setup.close()
    done: Counter[str] = Counter()
    overlaps: list[str] = []
    active: dict[str, str] = {}  # host -> worker fetching it right now
    lock = threading.Lock()

    def work(name: str) -> None:
        store = PgStore(pg_url, pool_size=1)
        leases = FrontierLeases(store, name, lease_s=30, host_delay_s=0)
        while True:
            rows = leases.claim(3, max_hosts=1)
            if not rows:
                if not store.frontier_counts().get("pending"):
                    break
                time.sleep(0.01)
                continue
            for r in rows:
                with lock:
                    if active.setdefault(host(r["url"]), name) != name:
                        overlaps.append(r["url"])
                with store.atomic():
                    assert leases.finish(r["url"], status="done")
                with lock:
                    done[r["url"]] += 1
            with lock:
                for r in rows:
                    active.pop(host(r["url"]), None)
            leases.release()
        store.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(done) == sorted(urls) and set(done.values()) == {1}
    assert overlaps == []


WORKER = """
import sys, time
from pipeline.backend.pg.leases import FrontierLeases
from pipeline.backend.pg.store import PgStore

url, name = sys.argv[1], sys.argv[2]
store = PgStore(url, pool_size=1)
leases = FrontierLeases(store, name, lease_s=1.0, host_delay_s=0)
while True:
    rows = leases.claim(2, max_hosts=1)
    if not rows:
        if not store.db.execute("SELECT 1 FROM frontier WHERE status != 'done' LIMIT 1").fetchone():
            break
        time.sleep(0.05)
        continue
    for r in rows:
        try:
            with store.atomic():  # the document's transaction: its row, then the URL marked done
                store.db.execute("INSERT INTO processed (url, worker) VALUES (?, ?)", (r["url"], name))
                time.sleep(0.05)
                if not leases.finish(r["url"], status="done"):
                    raise LookupError(r["url"])  # lease lost: roll back, the new holder does it
        except LookupError:
            pass
    leases.release()
"""


def test_kill_9_of_a_worker_process_loses_nothing_and_repeats_nothing(pg_url: str) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    store = PgStore(pg_url)
    urls = [f"https://h{h}.example/p{i}" for h in range(6) for i in range(10)]
    store.frontier_insert([(u, "src", "page", None) for u in urls])
    store.db.execute("CREATE TABLE processed (url TEXT PRIMARY KEY, worker TEXT NOT NULL)")
    procs = {
        name: subprocess.Popen([sys.executable, "-c", WORKER, pg_url, name], cwd=ROOT)
        for name in ("victim", "other")
    }
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = store.db.execute("SELECT COUNT(*) FROM processed WHERE worker = 'victim'").fetchone()
        if done and done[0] >= 5:
            break
        time.sleep(0.05)
    procs["victim"].send_signal(signal.SIGKILL)
    procs["victim"].wait(timeout=10)
    assert procs["other"].wait(timeout=120) == 0
    rows = store.db.execute("SELECT url, worker FROM processed").rows
    assert sorted(r[0] for r in rows) == sorted(urls)  # every URL once: primary key, and all there
    assert {r[1] for r in rows} == {"victim", "other"}
    assert store.frontier_counts() == {"done": len(urls)}
    store.close()


def test_a_claim_spreads_over_its_hosts_and_a_fetched_host_waits_out_its_delay(pg_url: str) -> None:
    s1, s2 = PgStore(pg_url), PgStore(pg_url)
    seed(s1, per_host=5)
    w1, w2 = FrontierLeases(s1, "w1"), FrontierLeases(s2, "w2")
    got = [r["url"] for r in w1.claim(8, max_hosts=4)]
    assert Counter(host(u) for u in got) == dict.fromkeys(HOSTS, 2)  # n / hosts each, not 8 of one
    assert w2.claim(8) == []  # every host is w1's while it fetches
    w1.release_host("a.example", 0)  # fetched what it claimed there; its URLs stay w1's
    w1.release_host("b.example", 60)  # a crawl delay: nobody asks b again for a minute
    again = [r["url"] for r in w2.claim(8)]
    assert {host(u) for u in again} == {"a.example"} and not set(again) & set(got)
    assert set(w1.held()) == set(got)
    s1.close()
    s2.close()


def test_workers_running_together_form_one_crawl_and_a_dead_workers_run_is_interrupted(pg_url: str) -> None:
    s1, s2 = PgStore(pg_url), PgStore(pg_url)
    first = FrontierLeases(s1, "first", lease_s=0.5)
    run1 = first.start_run()
    joiner = FrontierLeases(s2, "joiner", lease_s=60)
    run2 = joiner.start_run()
    assert (first.gen, joiner.gen) == (run1, run1)  # joined the running crawl
    assert joiner.others_running() and first.others_running()
    url = "file:///corpus/a.html"
    s1.frontier_insert(
        [(url, "local", "file", None), ("https://x.example/feed", "https://x.example/feed", "sitemap", None)]
    )
    assert [r["url"] for r in first.claim_urls([url], 5)] == [url]
    with s1.atomic():
        assert first.finish(url, status="done")
    assert joiner.settled([url]) == {url}
    assert joiner.claim_urls([url], 5) == []  # settled in this crawl: not read again by the joiner
    assert joiner.unsettled([url]) == []
    time.sleep(0.8)  # the first worker dies: its run's lease expires (the joiner keeps renewing)
    assert joiner.renew() == 0 and not joiner.others_running()
    s2.db.execute("UPDATE runs SET status = 'finished' WHERE run_id = ?", (run2,))
    later = FrontierLeases(s2, "later")
    run3 = later.start_run()
    assert later.gen == run3  # nobody running: a new crawl, in which the file is due again
    assert {r["run_id"]: r["status"] for r in s2.runs()} == {
        run1: "interrupted",
        run2: "finished",
        run3: "running",
    }
    assert later.unsettled([url]) == [url]
    assert [r["url"] for r in later.claim_urls([url], 5)] == [url]
    s1.db.execute("UPDATE frontier SET status = 'done', gen = ? WHERE kind = 'sitemap'", (run1,))
    assert later.requeue("https://x.example/feed", "sitemap") == 1  # done in an earlier crawl: again
    assert joiner.requeue("https://x.example/feed", "sitemap") == 0  # (already pending)
    s1.close()
    s2.close()
