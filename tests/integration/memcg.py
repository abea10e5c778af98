"""A memory cgroup for tests and benchmarks to run the service in: cgroup v2
where the machine's v2 hierarchy has the memory controller, else the v1
memory controller (a hybrid Debian 12 machine: /sys/fs/cgroup/memory).

    cg = memcg.MemCgroup(700 << 20, 'rv-test')   # raises memcg.Unavailable
    subprocess.Popen(cmd, preexec_fn=cg.enter)    # the child starts inside it
    cg.oom_kills(), cg.usage(), cg.peak()
    cg.remove()                                  # SIGKILLs what is left, rmdir
    memcg.MemCgroup(None, 'rv-bench')             # no limit: only counts

Needs root (or a delegated, writable hierarchy). Unavailable says why not."""
import os
import signal
import time

V1_ROOT = '/sys/fs/cgroup/memory'


class Unavailable(Exception):
    """Neither cgroup version can give us a memory cgroup here."""


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def sigkill_until_gone(pids, tries=50, pause=0.1):
    """SIGKILL what pids() lists until it lists nothing, at most tries
    rounds pause seconds apart. Whether it is gone."""
    for _ in range(tries):
        left = pids()
        if not left:
            return True
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # gone already
                pass
        time.sleep(pause)
    return not pids()


def v2_root():
    """The cgroup2 mount point, or None."""
    try:
        for line in _read('/proc/self/mountinfo').splitlines():
            left, _, right = line.partition(' - ')
            if right.split(' ')[0] == 'cgroup2':
                return left.split(' ')[4]
    except OSError:
        pass
    return None


def _v2_ready(root):
    """Whether children of root can have the memory controller; turns it on
    in root's subtree_control when root offers it."""
    try:
        if 'memory' not in _read(os.path.join(root, 'cgroup.controllers')).split():
            return False
        sub = os.path.join(root, 'cgroup.subtree_control')
        if 'memory' not in _read(sub).split():
            _write(sub, '+memory')
        return 'memory' in _read(sub).split()
    except OSError:
        return False


def _version():
    root = v2_root()
    if root and os.access(root, os.W_OK) and _v2_ready(root):
        return 2, root
    if os.path.isdir(V1_ROOT) and os.access(V1_ROOT, os.W_OK) and \
            os.path.exists(os.path.join(V1_ROOT, 'memory.limit_in_bytes')):
        return 1, V1_ROOT
    why = []
    why.append('cgroup v2 at %s has no memory controller we can enable' % root if root else 'no cgroup v2 mount')
    why.append('%s is not a writable cgroup v1 memory hierarchy' % V1_ROOT)
    raise Unavailable('no memory cgroup can be made here: ' + '; '.join(why))


def root_enter():
    """For preexec_fn: moves the calling process to the root of the memory
    hierarchy (v2 where it has the memory controller, else v1), where it has
    no memory cgroup of its own. Raises Unavailable where neither can be
    written."""
    _, root = _version()
    _write(os.path.join(root, 'cgroup.procs'), str(os.getpid()))


class MemCgroup:
    def __init__(self, limit_bytes, name='rv-test'):
        self.version, root = _version()
        self.path = os.path.join(root, '%s-%d-%d' % (name, os.getpid(), int(time.time() * 1000) % 100000))
        os.mkdir(self.path)
        try:
            if limit_bytes is None:
                pass
            elif self.version == 2:
                _write(self._f('memory.max'), str(limit_bytes))
                _write(self._f('memory.swap.max'), '0') if os.path.exists(self._f('memory.swap.max')) else None
            else:
                _write(self._f('memory.limit_in_bytes'), str(limit_bytes))
                # as swap.max = 0 does in v2: memory plus swap within the same
                # limit, so a host with swap still OOM-kills at the limit
                # (the file exists where the kernel accounts swap; it must
                # not be below limit_in_bytes, so it is written second)
                if os.path.exists(self._f('memory.memsw.limit_in_bytes')):
                    _write(self._f('memory.memsw.limit_in_bytes'), str(limit_bytes))
        except OSError:
            os.rmdir(self.path)
            raise
        self.limit = limit_bytes

    def _f(self, name):
        return os.path.join(self.path, name)

    def enter(self):
        """For preexec_fn: moves the calling process into the cgroup."""
        _write(self._f('cgroup.procs'), str(os.getpid()))

    def procs(self):
        try:
            return [int(p) for p in _read(self._f('cgroup.procs')).split()]
        except OSError:
            return []

    def oom_kills(self):
        """The kernel's count of OOM kills in this cgroup."""
        name = 'memory.events' if self.version == 2 else 'memory.oom_control'
        for line in _read(self._f(name)).splitlines():
            key, _, value = line.partition(' ')
            if key == 'oom_kill':
                return int(value)
        raise RuntimeError('%s has no oom_kill line (kernel older than 4.13?)' % self._f(name))

    def usage(self):
        return int(_read(self._f('memory.current' if self.version == 2 else 'memory.usage_in_bytes')))

    def peak(self):
        """The most the cgroup has used, or None where the kernel does not keep it."""
        try:
            return int(_read(self._f('memory.peak' if self.version == 2 else 'memory.max_usage_in_bytes')))
        except OSError:
            return None

    def remove(self):
        """SIGKILLs whatever is still inside, then removes the cgroup."""
        sigkill_until_gone(self.procs)
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
