import { stat } from 'node:fs/promises';

/** How often the socket file is looked at: one stat, a few microseconds. */
const WATCH_MS = 100;

/**
 * Calls `changed` when the unix socket at `path` appears, disappears or is replaced (another
 * inode: a new HAProxy bound it). A fresh or restarted instance is noticed within WATCH_MS
 * instead of at the end of a retry backoff (up to 5 s) or the next `show info` poll. Returns stop.
 */
export function watchSocket(path: string, changed: () => void): () => void {
  let last: string | undefined;
  let busy = false;
  const look = async () => {
    if (busy) return;
    busy = true;
    try {
      const now = await stat(path).then(
        (st) => `${st.dev}:${st.ino}:${st.ctimeMs}`,
        () => 'absent',
      );
      if (last !== undefined && now !== last) changed();
      last = now;
    } finally {
      busy = false;
    }
  };
  void look();
  const timer = setInterval(() => void look(), WATCH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
