/**
 * Keep-alive for every websocket with one timer: each socket is pinged once per `everyMs`, and
 * one that has not answered its previous ping when the next comes due is terminated (a peer
 * that vanished without closing). graphql-ws's own keep-alive holds an interval per socket and a
 * timeout per ping; here the sockets are split into slices by arrival and one slice is visited
 * per tick, a tick every TICK_MS, so the pings of 50,000 sockets go out evenly rather than in
 * bursts (with 12 slices, 50,000 sockets over 4 instances sent about 1,000 pings in one go per
 * instance every second, and the pongs came back together: pushes waited seconds —
 * docs/PERFORMANCE.md, "Across instances").
 */
import type { WebSocket, WebSocketServer } from 'ws';

const TICK_MS = 50;

export function keepSocketsAlive(wss: WebSocketServer, everyMs: number): { stop(): void } {
  if (everyMs <= 0) return { stop: () => undefined };
  const count = Math.max(1, Math.round(everyMs / TICK_MS));
  /** The sockets of each slice, with whether each one's last ping is still unanswered. */
  const slices = Array.from({ length: count }, () => new Map<WebSocket, { waiting: boolean }>());
  let arrivals = 0;
  let tick = 0;
  wss.on('connection', (socket) => {
    const slice = slices[arrivals++ % count];
    const s = { waiting: false };
    slice.set(socket, s);
    socket.on('pong', () => (s.waiting = false));
    socket.once('close', () => slice.delete(socket));
  });
  const timer = setInterval(() => {
    for (const [socket, s] of slices[tick++ % count]) {
      if (socket.readyState !== socket.OPEN) continue;
      if (s.waiting) {
        socket.terminate();
        continue;
      }
      s.waiting = true;
      socket.ping();
    }
  }, everyMs / count);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
