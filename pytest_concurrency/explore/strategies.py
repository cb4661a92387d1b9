"""How the next runnable worker is picked: PCT, random walk, bounded DFS, replay."""
import random

STRATEGIES = ("pct", "random", "dfs")


def _rng(seed, index):
    return random.Random(seed * 1_000_003 + index)


class Strategy:
    name = "?"
    exhausted = False

    def begin(self, index, nworkers):
        """Called before schedule ``index``."""

    def choose(self, enabled, current, step):
        raise NotImplementedError

    def end(self, steps):
        """Called after a schedule with the number of decisions it took."""

    def expects_detach(self):
        return None  # None: no expectation (explore); True/False in replay

    def retry(self):
        pass


class RandomWalk(Strategy):
    """Uniform choice among runnable workers at every step."""

    name = "random"

    def __init__(self, seed):
        self.seed = seed

    def begin(self, index, nworkers):
        self.rng = _rng(self.seed, index)

    def choose(self, enabled, current, step):
        return enabled[self.rng.randrange(len(enabled))]


class PCT(Strategy):
    """Probabilistic concurrency testing (Burckhardt et al. 2010), depth ``d``.

    Random distinct priorities; d-1 change points lower the running worker below
    everyone. Steps are counted only where a preemption is possible (the running
    worker could go on and another could run), and k adapts to the most such steps
    seen in one schedule so far.
    """

    name = "pct"

    def __init__(self, seed, depth=3, k=8):
        self.seed, self.depth, self.k = seed, depth, k
        self.longest = 0
        self.tried = set()

    def begin(self, index, nworkers):
        self.rng = _rng(self.seed, index)
        n = self.depth - 1
        span = max(self.k, n)
        for _ in range(64):  # small spaces: do not draw the same parameters twice
            prio = [self.depth + self.rng.random() for _ in range(nworkers)]
            points = tuple(sorted(self.rng.sample(range(1, span + 1), n)))
            key = (span, tuple(sorted(range(nworkers), key=prio.__getitem__)), points)
            if key not in self.tried:
                break
        self.tried.add(key)
        self.prio = dict(enumerate(prio))
        self.changes = dict(zip(points, range(1, n + 1), strict=True))
        self.count = 0

    def _priority(self, w):
        p = self.prio.get(w.index)
        if p is None:
            p = self.prio[w.index] = self.depth + self.rng.random()
        return p

    def choose(self, enabled, current, step):
        for w in enabled:
            self._priority(w)
        if current is not None and len(enabled) > 1 and current in enabled:
            self.count += 1
            low = self.changes.get(self.count)
            if low is not None:
                self.prio[current.index] = low / self.depth
        return max(enabled, key=self._priority)

    def end(self, steps):
        self.longest = max(self.longest, self.count)
        self.k = max(self.longest, 2)


class DFS(Strategy):
    """Depth-first search over choices with at most ``bound`` preemptions."""

    name = "dfs"

    def __init__(self, seed=0, bound=2):
        self.bound = bound
        self.stack = []  # frames: [enabled idx list, current idx or None, chosen, tried, pre]
        self.pos = 0

    def begin(self, index, nworkers):
        self.pos = 0

    @staticmethod
    def _preempts(frame, choice):
        return frame[1] is not None and frame[1] in frame[0] and choice != frame[1]

    def choose(self, enabled, current, step):
        idx = [w.index for w in enabled]
        by_idx = {w.index: w for w in enabled}
        cur = current.index if current is not None else None
        if self.pos < len(self.stack):
            frame = self.stack[self.pos]
            if frame[2] in by_idx and frame[0] == idx:
                self.pos += 1
                return by_idx[frame[2]]
            del self.stack[self.pos:]  # diverged (timing): rebuild from here
        pre = 0
        if self.stack:
            last = self.stack[-1]
            pre = last[4] + (1 if self._preempts(last, last[2]) else 0)
        default = cur if cur in by_idx else idx[0]
        self.stack.append([idx, cur, default, {default}, pre])
        self.pos += 1
        return by_idx[default]

    def end(self, steps):
        del self.stack[self.pos:]
        while self.stack:
            frame = self.stack[-1]
            for alt in frame[0]:
                if alt in frame[3]:
                    continue
                cost = frame[4] + (1 if self._preempts(frame, alt) else 0)
                if cost <= self.bound:
                    frame[2] = alt
                    frame[3].add(alt)
                    return
                frame[3].add(alt)
            self.stack.pop()
        self.exhausted = True


class Replay(Strategy):
    """Follows a recorded choice sequence; reports where execution departs from it."""

    name = "replay"

    def __init__(self, choices):
        self.events = choices
        self.pos = 0
        self.step = 0
        self.divergence = None

    def choose(self, enabled, current, step):
        self.step = step + 1
        if self.pos >= len(self.events):
            self.divergence = (f"replay diverged at step {self.step}: the recorded schedule "
                               f"ended, but workers {_names(enabled)} still want to run")
            return None
        want = self.events[self.pos]
        for w in enabled:
            if w.index == want:
                self.pos += 1
                return w
        self.divergence = (f"replay diverged at step {self.step}: expected worker {want}, "
                           f"but only workers {_names(enabled)} are runnable")
        return None

    def expects_detach(self):
        nxt = self.events[self.pos] if self.pos < len(self.events) else 0
        if nxt < 0:
            self.pos += 1
            return True
        return False

    def retry(self):
        self.divergence = None


def _names(ws):
    return ", ".join(str(w.index) for w in ws) or "(none)"


def make(name, seed, **opts):
    if name == "pct":
        return PCT(seed, depth=opts.get("depth", 3))
    if name == "random":
        return RandomWalk(seed)
    if name == "dfs":
        return DFS(seed, bound=opts.get("preemption_bound", 2))
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
