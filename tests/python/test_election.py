"""kazoo's Election: one leader at a time, leadership passes in arrival order when the leader
steps down or its session ends, and a cancelled contender never leads.

Contenders sit on different members of an ensemble; listing the contenders through one of them
after others joined or left is preceded by `sync`."""

import threading

from harness.clients import WAIT_S, children_reach, wait_until


class Contest:
    """Runs contenders in threads and records who leads, and whether two ever led at once."""

    def __init__(self, clients, path, count):
        self.clients = [clients.new() for _ in range(count)]
        self.elections = [zk.Election(path, f"c{i}") for i, zk in enumerate(self.clients)]
        self.elected = [threading.Event() for _ in range(count)]
        self.step_down = [threading.Event() for _ in range(count)]
        self.leaders = []
        self.overlaps = []
        self.reigning = set()
        self.guard = threading.Lock()
        self.threads = []

    def _lead(self, i):
        with self.guard:
            if self.reigning:
                self.overlaps.append((i, set(self.reigning)))
            self.reigning.add(i)
            self.leaders.append(i)
        self.elected[i].set()
        self.step_down[i].wait(WAIT_S * 4)
        with self.guard:
            self.reigning.discard(i)

    def _run(self, i):
        try:
            self.elections[i].run(self._lead, i)
        except Exception:  # noqa: BLE001 - a leader whose session was closed cannot release
            pass

    def enter(self, i):
        t = threading.Thread(target=self._run, args=(i,), daemon=True)
        t.start()
        self.threads.append(t)

    def end_session(self, i):
        """The leader's process dies: its session closes while it still 'leads'."""
        with self.guard:
            self.reigning.discard(i)
        self.clients[i].stop()
        self.step_down[i].set()

    def finish(self):
        for event in self.step_down:
            event.set()
        for t in self.threads:
            t.join(WAIT_S)


def test_one_leader_at_a_time_and_the_next_wins_when_the_leader_goes(clients, base):
    path = f"{base}/election"
    contest = Contest(clients, path, 3)
    observer = clients.new()
    try:
        contest.enter(0)
        wait_until(contest.elected[0], "the first contender to lead")
        for i in (1, 2):
            queued = children_reach(observer, path, i + 1)
            contest.enter(i)
            wait_until(queued, f"contender {i} to queue")
        contest.clients[0].sync(path)
        assert contest.elections[0].contenders() == ["c0", "c1", "c2"]
        assert contest.leaders == [0]

        contest.step_down[0].set()
        wait_until(contest.elected[1], "the second contender to lead after the first stepped down")
        assert contest.leaders == [0, 1]

        contest.end_session(1)
        wait_until(
            contest.elected[2], "the third contender to lead after the leader's session closed"
        )
        assert contest.leaders == [0, 1, 2]
    finally:
        contest.finish()
    assert contest.overlaps == []


def test_cancelled_contender_never_leads(clients, base):
    path = f"{base}/election"
    contest = Contest(clients, path, 2)
    observer = clients.new()
    try:
        contest.enter(0)
        wait_until(contest.elected[0], "the first contender to lead")
        queued = children_reach(observer, path, 2)
        contest.enter(1)
        wait_until(queued, "the second contender to queue")
        contest.elections[1].cancel()
        contest.threads[1].join(WAIT_S)
        assert not contest.threads[1].is_alive()
        contest.clients[0].sync(path)
        assert contest.elections[0].contenders() == ["c0"]
        contest.step_down[0].set()
        contest.threads[0].join(WAIT_S)
        assert contest.leaders == [0]
    finally:
        contest.finish()
