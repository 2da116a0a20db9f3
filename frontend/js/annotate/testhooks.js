// The annotate view's test hooks: data-state / data-objects / data-masks / data-stale /
// data-pending / data-selected / data-image on canvas.annotate-canvas, and window.__annotate
// (objects, maskAt, toScreen, selected, pending, frames, lastFrameMs), read by the Playwright
// tests in tests/browser/test_annotate*.py.

/** Refresh the canvas's data-* attributes from the controller (call after every change). */
export function updateHooks(canvas, controller, { ready, fatal }) {
  const s = controller.session;
  if (!fatal) canvas.dataset.state = ready ? "ready" : "loading";
  canvas.dataset.objects = String(s.objects.size);
  canvas.dataset.masks = String(s.masksApplied);
  canvas.dataset.stale = String(s.masksStale);
  canvas.dataset.pending = String(controller.socket.pendingCount);
  canvas.dataset.selected = s.selected === null ? "" : String(s.selected);
}

/** Install window.__annotate; returns the function that removes it. */
export function installTestHooks({ controller, viewport, stage, renderer }) {
  const hooks = {
    objects: () =>
      [...controller.session.objects.values()]
        .sort((a, b) => a.id - b.id)
        .map((o) => ({ id: o.id, box: o.layer ? [o.layer.x, o.layer.y, o.layer.w, o.layer.h] : null, area: o.layer ? o.layer.area : 0, label_id: o.label_id, version: o.version, hidden: o.hidden, can_undo: o.can_undo, can_redo: o.can_redo, candidates: o.candidates, pseudo: o.pseudo, review_state: o.review_state })),
    /** The visible object drawn on top at image pixel (x, y), or 0. */
    maskAt: (x, y) => controller.session.maskAt(x, y),
    /** Client coordinates of the centre of image pixel (x, y). */
    toScreen: (x, y) => {
      const p = viewport.toStage(x + 0.5, y + 0.5);
      const r = stage.getBoundingClientRect();
      return { x: r.left + p.x, y: r.top + p.y };
    },
    selected: () => controller.session.selected,
    pending: () => controller.socket.pendingCount,
    frames: () => renderer.frames,
    lastFrameMs: () => renderer.lastFrameMs,
  };
  window.__annotate = hooks;
  return () => {
    if (window.__annotate === hooks) delete window.__annotate;
  };
}
