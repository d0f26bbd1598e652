"""A TCP proxy on loopback for network faults a real peer will not make on demand: freeze()
stops the bytes of the connections open at that moment in both directions while their sockets
stay open (a load-balancer failover or a dropped NAT entry, seen from the client); deafen()
lets their requests through but drops the answers (a response lost after the server acted on
the request). Connections opened later are forwarded normally."""
import select
import socket
import threading


class TcpProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []          # [client socket, upstream socket, frozen]
        self.accepted = 0
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            entry = [c, u, False, False]
            with self.lock:
                self.accepted += 1
                self.conns.append(entry)
            threading.Thread(target=self._pump, args=(entry,), daemon=True).start()

    def _pump(self, entry):
        c, u = entry[0], entry[1]
        peer = {c: u, u: c}
        try:
            while not self.closing:
                if entry[2]:
                    # Frozen: read nothing, send nothing, keep both sockets open.
                    select.select([], [], [], 0.2)
                    continue
                ready, _, _ = select.select([c, u], [], [], 0.2)
                for s in ready:
                    if entry[2]:
                        break
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is u and entry[3]:
                        continue        # deaf: the answer is dropped
                    peer[s].sendall(data)
        except OSError:
            pass
        finally:
            if not entry[2] or self.closing:
                c.close()
                u.close()

    def freeze(self):
        """Stops every connection open now; returns how many there were."""
        with self.lock:
            live = [e for e in self.conns if not e[2]]
            for e in live:
                e[2] = True
            return len(live)

    def deafen(self):
        """Answers on every connection open now are dropped from here on; returns how many."""
        with self.lock:
            live = [e for e in self.conns if not e[2] and not e[3]]
            for e in live:
                e[3] = True
            return len(live)

    def connections(self):
        with self.lock:
            return self.accepted

    def close(self):
        self.closing = True
        self.listener.close()
        with self.lock:
            for c, u, *_ in self.conns:
                for s in (c, u):
                    try:
                        s.close()
                    except OSError:
                        pass
