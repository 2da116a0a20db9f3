// The project event stream (ws://host/ws/projects/{id}/events/), with reconnects.
// Callers subscribe to event names; `connected()` says whether pushes are arriving, so a
// caller can fall back to polling while the socket is down.

export function projectEvents(projectId) {
  const listeners = new Map(); // event name -> Set of callbacks
  const stateListeners = new Set();
  let socket = null;
  let open = false;
  let closed = false;
  let retry = 1000;
  let timer = null;

  function setOpen(value) {
    if (open === value) return;
    open = value;
    for (const fn of stateListeners) fn(open);
  }

  function connect() {
    if (closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    try {
      socket = new WebSocket(`${scheme}://${location.host}/ws/projects/${projectId}/events/`);
    } catch (error) {
      console.warn("websocket unavailable", error);
      schedule();
      return;
    }
    socket.onopen = () => {
      retry = 1000;
      setOpen(true);
    };
    socket.onmessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type !== "event") return;
      for (const fn of listeners.get(data.event) || []) fn(data.payload);
      for (const fn of listeners.get("*") || []) fn(data.payload, data.event);
    };
    socket.onclose = () => {
      setOpen(false);
      schedule();
    };
    socket.onerror = () => {}; // onclose follows; polling covers the gap
  }

  function schedule() {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  }

  connect();

  return {
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
      return () => listeners.get(event).delete(fn);
    },
    onState(fn) {
      stateListeners.add(fn);
      return () => stateListeners.delete(fn);
    },
    connected: () => open,
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) {
        socket.onclose = null;
        socket.close();
      }
      setOpen(false);
    },
  };
}
